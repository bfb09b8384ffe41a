package generate_test

import (
	"fmt"

	"github.com/kappa-stream/kappa/generate"
)

// Example writes the first lines of a stream with their Kafka keys.
func Example() {
	g, err := generate.New(generate.Config{Seed: 42, Events: 1_000, MalformedRate: 0.005})
	if err != nil {
		panic(err)
	}
	var line, key []byte
	for range 3 {
		line, _ = g.Next(line[:0])
		key = g.Key(key[:0])
		fmt.Printf("%s %s\n", key, line)
	}
	fmt.Println(g.Count())
	// Output:
	// 1843 {"user_id":1843,"song_id":174686,"artist_id":3985,"ts":"2026-03-01T00:00:00Z","ms_played":128465,"lat":-23.574347,"lng":-46.620990}
	// 28707 {"user_id":28707,"song_id":91629,"artist_id":3101,"ts":"2026-03-01T00:10:04.031Z","ms_played":153402,"country":"TH","lat":13.760015,"lng":100.529235}
	// 96908 {"user_id":96908,"song_id":178153,"artist_id":2420,"ts":"2026-03-01T00:20:08.456Z","ms_played":22440,"country":"MX","lat":19.440751,"lng":-99.209249}
	// 3
}
