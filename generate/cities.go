package generate

import "math"

// city is a metropolitan area users live around.
type city struct {
	name     string
	country  string // ISO 3166-1 alpha-2, upper case
	lower    string // country in lower case
	lat, lng float64
	offset   int32   // standard UTC offset in minutes, for timestamps with an offset
	weight   uint32  // relative number of listeners
	lngScale float64 // degrees of longitude per degree of latitude at lat
}

// cities lists the metropolitan areas of the synthetic user base: real
// coordinates and country codes, weights skewed like a streaming
// service's listener base (large in the Americas, Europe and parts of
// Asia, small where the service is barely available).
var cities = func() []city {
	cs := []city{
		{name: "New York", country: "US", lat: 40.712776, lng: -74.005974, offset: -300, weight: 90},
		{name: "London", country: "GB", lat: 51.507351, lng: -0.127758, offset: 0, weight: 85},
		{name: "São Paulo", country: "BR", lat: -23.550520, lng: -46.633308, offset: -180, weight: 80},
		{name: "Mexico City", country: "MX", lat: 19.432608, lng: -99.133209, offset: -360, weight: 70},
		{name: "Los Angeles", country: "US", lat: 34.052235, lng: -118.243683, offset: -480, weight: 65},
		{name: "Tokyo", country: "JP", lat: 35.676191, lng: 139.650310, offset: 540, weight: 60},
		{name: "Paris", country: "FR", lat: 48.856613, lng: 2.352222, offset: 60, weight: 55},
		{name: "Jakarta", country: "ID", lat: -6.208763, lng: 106.845599, offset: 420, weight: 50},
		{name: "Berlin", country: "DE", lat: 52.520008, lng: 13.404954, offset: 60, weight: 45},
		{name: "Istanbul", country: "TR", lat: 41.008238, lng: 28.978359, offset: 180, weight: 40},
		{name: "Mumbai", country: "IN", lat: 19.075984, lng: 72.877656, offset: 330, weight: 40},
		{name: "Buenos Aires", country: "AR", lat: -34.603684, lng: -58.381559, offset: -180, weight: 38},
		{name: "Manila", country: "PH", lat: 14.599512, lng: 120.984219, offset: 480, weight: 36},
		{name: "Madrid", country: "ES", lat: 40.416775, lng: -3.703790, offset: 60, weight: 35},
		{name: "Delhi", country: "IN", lat: 28.613939, lng: 77.209021, offset: 330, weight: 34},
		{name: "Chicago", country: "US", lat: 41.878114, lng: -87.629798, offset: -360, weight: 33},
		{name: "Toronto", country: "CA", lat: 43.653226, lng: -79.383184, offset: -300, weight: 32},
		{name: "Seoul", country: "KR", lat: 37.566535, lng: 126.977969, offset: 540, weight: 30},
		{name: "Sydney", country: "AU", lat: -33.868820, lng: 151.209296, offset: 600, weight: 30},
		{name: "Bogotá", country: "CO", lat: 4.710989, lng: -74.072092, offset: -300, weight: 28},
		{name: "Rio de Janeiro", country: "BR", lat: -22.906847, lng: -43.172897, offset: -180, weight: 28},
		{name: "Rome", country: "IT", lat: 41.902784, lng: 12.496366, offset: 60, weight: 26},
		{name: "Bangkok", country: "TH", lat: 13.756331, lng: 100.501765, offset: 420, weight: 25},
		{name: "Lagos", country: "NG", lat: 6.524379, lng: 3.379206, offset: 60, weight: 24},
		{name: "Milan", country: "IT", lat: 45.464204, lng: 9.189982, offset: 60, weight: 22},
		{name: "Lima", country: "PE", lat: -12.046374, lng: -77.042793, offset: -300, weight: 22},
		{name: "Santiago", country: "CL", lat: -33.448890, lng: -70.669265, offset: -240, weight: 21},
		{name: "Amsterdam", country: "NL", lat: 52.367573, lng: 4.904139, offset: 60, weight: 20},
		{name: "Warsaw", country: "PL", lat: 52.229676, lng: 21.012229, offset: 60, weight: 20},
		{name: "Stockholm", country: "SE", lat: 59.329323, lng: 18.068581, offset: 60, weight: 18},
		{name: "Cairo", country: "EG", lat: 30.044420, lng: 31.235712, offset: 120, weight: 18},
		{name: "Johannesburg", country: "ZA", lat: -26.204103, lng: 28.047305, offset: 120, weight: 17},
		{name: "Ho Chi Minh City", country: "VN", lat: 10.823099, lng: 106.629664, offset: 420, weight: 16},
		{name: "Riyadh", country: "SA", lat: 24.713552, lng: 46.675296, offset: 180, weight: 15},
		{name: "Singapore", country: "SG", lat: 1.352083, lng: 103.819836, offset: 480, weight: 15},
		{name: "Melbourne", country: "AU", lat: -37.813628, lng: 144.963058, offset: 600, weight: 15},
		{name: "Miami", country: "US", lat: 25.761680, lng: -80.191790, offset: -300, weight: 15},
		{name: "Vancouver", country: "CA", lat: 49.282729, lng: -123.120738, offset: -480, weight: 12},
		{name: "Guadalajara", country: "MX", lat: 20.659699, lng: -103.349609, offset: -360, weight: 12},
		{name: "Manchester", country: "GB", lat: 53.480759, lng: -2.242631, offset: 0, weight: 12},
		{name: "Lisbon", country: "PT", lat: 38.722252, lng: -9.139337, offset: 0, weight: 11},
		{name: "Dublin", country: "IE", lat: 53.349805, lng: -6.260310, offset: 0, weight: 10},
		{name: "Nairobi", country: "KE", lat: -1.292066, lng: 36.821946, offset: 180, weight: 10},
		{name: "Casablanca", country: "MA", lat: 33.573110, lng: -7.589843, offset: 60, weight: 9},
		{name: "Accra", country: "GH", lat: 5.603717, lng: -0.186964, offset: 0, weight: 8},
		{name: "Karachi", country: "PK", lat: 24.860735, lng: 67.001137, offset: 300, weight: 8},
		{name: "Tehran", country: "IR", lat: 35.689198, lng: 51.388974, offset: 210, weight: 6},
		{name: "Auckland", country: "NZ", lat: -36.848460, lng: 174.763332, offset: 720, weight: 6},
		{name: "Kinshasa", country: "CD", lat: -4.441931, lng: 15.266293, offset: 60, weight: 4},
		{name: "Reykjavík", country: "IS", lat: 64.146582, lng: -21.942635, offset: 0, weight: 3},
		{name: "Shanghai", country: "CN", lat: 31.230416, lng: 121.473701, offset: 480, weight: 2},
	}
	for i := range cs {
		c := &cs[i]
		c.lower = string([]byte{c.country[0] | 0x20, c.country[1] | 0x20})
		c.lngScale = 1 / math.Cos(c.lat*math.Pi/180)
	}
	return cs
}()

// cityTable picks cities in proportion to their weight from 32 random
// bits.
type cityTable struct {
	cum []uint64 // cum[i] = (weights of cities 0…i) scaled to 1<<32
}

func newCityTable() cityTable {
	var total uint64
	for _, c := range cities {
		total += uint64(c.weight)
	}
	t := cityTable{cum: make([]uint64, len(cities))}
	var acc uint64
	for i, c := range cities {
		acc += uint64(c.weight)
		t.cum[i] = acc << 32 / total
	}
	return t
}

// pick returns the index of the city that the 32 random bits r select.
func (t cityTable) pick(r uint32) int {
	x := uint64(r)
	lo, hi := 0, len(t.cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if x < t.cum[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
