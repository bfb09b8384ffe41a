package events

// Country is an ISO 3166-1 alpha-2 country code in upper case, such as
// Country{'G', 'B'}. The zero value means absent.
type Country [2]byte

// ParseCountry returns the Country for s, a two-letter code in any case,
// and true if s is one of the 249 officially assigned ISO 3166-1 alpha-2
// codes. Reserved codes ("UK", "EU"), user-assigned ones ("XK", "XX"),
// deleted ones ("AN", "YU") and everything else give false.
func ParseCountry(s string) (Country, bool) {
	if len(s) != 2 {
		return Country{}, false
	}
	return countryOf(s[0], s[1])
}

// String returns the code, such as "GB", or "" when c is absent.
func (c Country) String() string {
	if c.IsZero() {
		return ""
	}
	return string(c[:])
}

// IsZero reports whether c is absent.
func (c Country) IsZero() bool {
	return c == Country{}
}

// countryOf is ParseCountry for the two bytes a and b.
func countryOf(a, b byte) (Country, bool) {
	c := Country{upper(a), upper(b)}
	return c, assigned(c)
}

// upper maps ASCII a … z to A … Z and leaves other bytes alone.
func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// assigned reports whether c is an officially assigned ISO 3166-1 alpha-2
// code, as of the ISO 3166 Maintenance Agency's list (the same 249 codes as
// the IANA time zone database's iso3166.tab).
func assigned(c Country) bool {
	switch string(c[:]) {
	case "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ":
		return true
	case "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ":
		return true
	case "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ":
		return true
	case "DE", "DJ", "DK", "DM", "DO", "DZ":
		return true
	case "EC", "EE", "EG", "EH", "ER", "ES", "ET":
		return true
	case "FI", "FJ", "FK", "FM", "FO", "FR":
		return true
	case "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY":
		return true
	case "HK", "HM", "HN", "HR", "HT", "HU":
		return true
	case "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT":
		return true
	case "JE", "JM", "JO", "JP":
		return true
	case "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ":
		return true
	case "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY":
		return true
	case "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ":
		return true
	case "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ":
		return true
	case "OM":
		return true
	case "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY":
		return true
	case "QA":
		return true
	case "RE", "RO", "RS", "RU", "RW":
		return true
	case "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ":
		return true
	case "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ":
		return true
	case "UA", "UG", "UM", "US", "UY", "UZ":
		return true
	case "VA", "VC", "VE", "VG", "VI", "VN", "VU":
		return true
	case "WF", "WS":
		return true
	case "YE", "YT":
		return true
	case "ZA", "ZM", "ZW":
		return true
	}
	return false
}
