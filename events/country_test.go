package events

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

func TestParseCountry(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Country
		ok   bool
	}{
		{"GB", Country{'G', 'B'}, true},
		{"gb", Country{'G', 'B'}, true},
		{"gB", Country{'G', 'B'}, true},
		{"US", Country{'U', 'S'}, true},
		{"de", Country{'D', 'E'}, true},
		{"AX", Country{'A', 'X'}, true}, // Åland Islands
		{"SS", Country{'S', 'S'}, true}, // South Sudan, 2011
		{"ZW", Country{'Z', 'W'}, true},
		{"UK", Country{}, false}, // exceptionally reserved
		{"EU", Country{}, false}, // exceptionally reserved
		{"XX", Country{}, false}, // user-assigned
		{"XK", Country{}, false}, // Kosovo: user-assigned, not ISO
		{"AN", Country{}, false}, // Netherlands Antilles: deleted
		{"YU", Country{}, false}, // Yugoslavia: deleted
		{"", Country{}, false},
		{"G", Country{}, false},
		{"GBR", Country{}, false},
		{"G1", Country{}, false},
		{" G", Country{}, false},
		{"\x00\x00", Country{}, false},
		{"ǅ", Country{}, false}, // two bytes, not letters
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := ParseCountry(tc.in)
			if ok != tc.ok || ok && got != tc.want {
				t.Errorf("ParseCountry(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
			if ok && got.String() != strings.ToUpper(tc.in) {
				t.Errorf("String() = %q, want %q", got.String(), strings.ToUpper(tc.in))
			}
		})
	}
}

func TestCountryZero(t *testing.T) {
	var c Country
	if !c.IsZero() || c.String() != "" {
		t.Errorf("zero Country: IsZero %v, String %q", c.IsZero(), c.String())
	}
	c = Country{'G', 'B'}
	if c.IsZero() || c.String() != "GB" {
		t.Errorf("GB: IsZero %v, String %q", c.IsZero(), c.String())
	}
}

// TestCountryTable checks that exactly 249 codes are assigned, and that
// they are those of tzdata's iso3166.tab when this machine has it.
func TestCountryTable(t *testing.T) {
	var all []string
	for a := byte('A'); a <= 'Z'; a++ {
		for b := byte('A'); b <= 'Z'; b++ {
			if c, ok := countryOf(a, b); ok {
				all = append(all, c.String())
			}
			if _, ok := countryOf(a+'a'-'A', b); ok != assigned(Country{a, b}) {
				t.Errorf("%c%c: lower case differs", a+'a'-'A', b)
			}
		}
	}
	if len(all) != 249 {
		t.Errorf("%d assigned codes, want 249", len(all))
	}

	f, err := os.Open("/usr/share/zoneinfo/iso3166.tab")
	if err != nil {
		t.Skipf("no tzdata to compare with: %v", err)
	}
	defer f.Close()
	var tz []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" && line[0] != '#' {
			tz = append(tz, strings.Fields(line)[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(tz, " ") != strings.Join(all, " ") {
		t.Errorf("assigned codes differ from iso3166.tab:\n got %v\nwant %v", all, tz)
	}
}
