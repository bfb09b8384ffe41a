package serve

// uiPatterns are the routes of the dashboard (Config.UI): its pages
// (CONTRACT.md) and its assets.
func uiPatterns() []string {
	return []string{
		"GET /{$}",
		"GET /assets/",
		"GET /top",
		"GET /artists/{id}",
		"GET /artists/{id}/fan-zones",
		"GET /songs/{id}",
		"GET /songs/{id}/live",
	}
}
