package deploy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// composeFile is the part of docker-compose.yml the test reads.
type composeFile struct {
	Services map[string]struct {
		Image       string            `json:"image"`
		Build       *struct{}         `json:"build"`
		Command     []string          `json:"command"`
		Environment map[string]string `json:"environment"`
		Volumes     []string          `json:"volumes"`
		Ports       []string          `json:"ports"`
	} `json:"services"`
	Volumes map[string]any `json:"volumes"`
}

// TestCompose checks docker-compose.yml without Docker: a KRaft Kafka,
// three kappa instances whose arguments are kappa process's flags, each
// with its own instance id, advertised name and volume on --data, all
// three behind the proxy's one published port; and that the Dockerfile
// builds with cgo and runs as a non-root user.
func TestCompose(t *testing.T) {
	processFlags := kappaFlags(t, "process")
	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	kafka, ok := f.Services["kafka"]
	if !ok || !strings.Contains(kafka.Environment["KAFKA_PROCESS_ROLES"], "controller") || !strings.HasPrefix(kafka.Image, "apache/kafka:") {
		t.Errorf("want a kafka service running Apache Kafka in KRaft mode (a controller role), got %+v", kafka)
	}
	var instances []string
	for name, s := range f.Services {
		if len(s.Command) == 0 || s.Command[0] != "process" {
			continue
		}
		instances = append(instances, name)
		if s.Image != "kappa:compose" || s.Build == nil {
			t.Errorf("%s: image %q, build %v: want the kappa image built from deploy/Dockerfile", name, s.Image, s.Build)
		}
		var args []string
		for i := 1; i < len(s.Command); i += 2 {
			args = append(args, s.Command[i]+"="+s.Command[i+1])
		}
		flags := parseArgs(t, append([]string{"process"}, args...), processFlags)
		if flags["instance-id"] != name || flags["advertise"] != "http://"+name+":8080" || flags["http"] != "0.0.0.0:8080" {
			t.Errorf("%s: --instance-id %s --advertise %s --http %s: want the service's name and port 8080",
				name, flags["instance-id"], flags["advertise"], flags["http"])
		}
		if want := name + "-data:" + flags["data"]; !slices.Contains(s.Volumes, want) {
			t.Errorf("%s: volumes %v, want %s", name, s.Volumes, want)
		}
		if _, ok := f.Volumes[name+"-data"]; !ok {
			t.Errorf("%s: volume %s-data is not declared", name, name)
		}
		if len(s.Ports) > 0 {
			t.Errorf("%s publishes ports %v: clients go through the proxy", name, s.Ports)
		}
	}
	slices.Sort(instances)
	if want := []string{"kappa-0", "kappa-1", "kappa-2"}; !slices.Equal(instances, want) {
		t.Fatalf("instances %v, want %v", instances, want)
	}
	proxy := f.Services["proxy"]
	if !slices.Equal(proxy.Ports, []string{"8080:8080"}) || !slices.Contains(proxy.Volumes, "./nginx.conf:/etc/nginx/nginx.conf:ro") {
		t.Errorf("proxy: ports %v volumes %v: want 8080 published and nginx.conf mounted", proxy.Ports, proxy.Volumes)
	}
	conf, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	var upstreams []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server ([\w.-]+:\d+)`).FindAllStringSubmatch(string(conf), -1) {
		upstreams = append(upstreams, m[1])
	}
	slices.Sort(upstreams)
	if want := []string{"kappa-0:8080", "kappa-1:8080", "kappa-2:8080"}; !slices.Equal(upstreams, want) {
		t.Errorf("nginx upstreams %v, want %v", upstreams, want)
	}

	docker, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := strings.Split(string(docker), "\nFROM ")
	final := stages[len(stages)-1]
	if !strings.Contains(string(docker), "CGO_ENABLED=1 go build") {
		t.Error("the Dockerfile does not build with CGO_ENABLED=1 (H3 is C)")
	}
	user := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(final)
	if user == nil || strings.HasPrefix(user[1], "0") || strings.HasPrefix(user[1], "root") {
		t.Errorf("the final stage runs as %v, want a non-root USER", user)
	}
}
