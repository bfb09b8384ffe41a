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
	// 1843 {"user_id":1843,"song_id":58979,"artist_id":4726,"ts":"2026-03-01T00:00:00Z","ms_played":193304,"country":"BR","lat":-23.570439,"lng":-46.612044,"event_id":"dxvx1qjbyt3h4"}
	// 57581 {"user_id":57581,"song_id":44735,"artist_id":1700,"ts":"2026-03-01T00:10:02.996Z","ms_played":348761,"country":"JP","lat":35.708538,"lng":139.686989}
	// 96908 {"user_id":96908,"song_id":40617,"artist_id":2809,"ts":"2026-03-01T00:20:08.456Z","ms_played":22440,"country":"MX","lat":19.440751,"lng":-99.209249}
	// 3
}
