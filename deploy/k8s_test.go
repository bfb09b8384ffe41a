// Package deploy holds kappa's deployment files: the Kubernetes manifests
// (k8s/), docker-compose and the Dockerfile. Its tests render the
// kustomizations as `kubectl kustomize` does, decode every object into the
// Kubernetes API types with unknown fields rejected, and check the
// invariants kappa relies on, against the real binary's flags and HTTP
// routes.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/kappa-stream/kappa/serve"
)

// rendered are the objects of one kustomization, decoded.
type rendered struct {
	statefulSets []appsv1.StatefulSet
	services     map[string]corev1.Service
	pdbs         []policyv1.PodDisruptionBudget
	configMaps   map[string]corev1.ConfigMap
	jobs         []batchv1.Job
	namespaces   []string
}

// decodeStrict decodes a YAML object into v as the API server's strict
// field validation does: field names are case-sensitive, and a field the
// type does not have (a typo Kubernetes would drop) or a duplicate one is
// an error.
func decodeStrict(y []byte, v any) error {
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// render builds the kustomization in dir as `kubectl kustomize dir` does
// and decodes every object.
func render(t *testing.T, dir string) rendered {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	r := rendered{services: map[string]corev1.Service{}, configMaps: map[string]corev1.ConfigMap{}}
	for _, res := range m.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		kind, name := res.GetKind(), res.GetName()
		decode := func(into any) {
			if err := decodeStrict(y, into); err != nil {
				t.Fatalf("%s: %s %s: %v\n%s", dir, kind, name, err, y)
			}
		}
		switch kind {
		case "StatefulSet":
			var s appsv1.StatefulSet
			decode(&s)
			r.statefulSets = append(r.statefulSets, s)
		case "Service":
			var s corev1.Service
			decode(&s)
			r.services[name] = s
		case "PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			decode(&p)
			r.pdbs = append(r.pdbs, p)
		case "ConfigMap":
			var c corev1.ConfigMap
			decode(&c)
			r.configMaps[name] = c
		case "Job":
			var j batchv1.Job
			decode(&j)
			r.jobs = append(r.jobs, j)
		case "Namespace":
			var n corev1.Namespace
			decode(&n)
			r.namespaces = append(r.namespaces, name)
		default:
			t.Fatalf("%s: unexpected kind %s (%s): add it to the test", dir, kind, name)
		}
	}
	return r
}

// metaSelector is a label selector as the API server reads it.
func metaSelector(ls *metav1.LabelSelector) (labels.Selector, error) {
	if ls == nil {
		return nil, errors.New("no selector")
	}
	return metav1.LabelSelectorAsSelector(ls)
}

// kappaFlags are the flags of kappa's commands, from the binary's own
// usage text: `kappa <command> -h`.
func kappaFlags(t *testing.T, command string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(kappaBin, command, "-h").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["brokers"] {
		t.Fatalf("kappa %s -h lists no --brokers:\n%s", command, out)
	}
	return flags
}

// kappaBin is the kappa binary built for this test run.
var kappaBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kappa-deploy-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kappaBin = filepath.Join(dir, "kappa")
	if out, err := exec.Command("go", "build", "-o", kappaBin, "../cmd/kappa").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build kappa: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// parseArgs maps the --flag=value arguments after the command to their
// values ("true" for a bare --flag).
func parseArgs(t *testing.T, args []string, flags map[string]bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range args[1:] {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") {
			t.Fatalf("argument %q: want --flag=value", a)
		}
		if !ok {
			value = "true"
		}
		if !flags[name] {
			t.Errorf("argument %q: kappa %s has no flag --%s", a, args[0], name)
		}
		if _, dup := out[name]; dup {
			t.Errorf("--%s given twice", name)
		}
		out[name] = value
	}
	return out
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// containerEnv is the environment of c as Kubernetes builds it: the
// ConfigMaps it imports and its own variables (a value from a field or a
// Secret is marked by the source's name). It fails on a ConfigMap that is
// not in the rendering.
func containerEnv(t *testing.T, c corev1.Container, cms map[string]corev1.ConfigMap) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			t.Fatalf("container %s: envFrom other than a ConfigMap", c.Name)
		}
		cm, ok := cms[from.ConfigMapRef.Name]
		if !ok {
			t.Fatalf("container %s imports ConfigMap %s, which is not rendered (have %v)", c.Name, from.ConfigMapRef.Name, slices.Sorted(maps.Keys(cms)))
		}
		maps.Copy(env, cm.Data)
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "field:" + e.ValueFrom.FieldRef.FieldPath
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		default:
			env[e.Name] = "other"
		}
	}
	return env
}

// expand replaces the $(VAR) references of the arguments as Kubernetes
// does, failing on one the container does not define (Kubernetes would
// pass it on as text).
func expand(t *testing.T, args []string, env map[string]string) []string {
	t.Helper()
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = varRef.ReplaceAllStringFunc(a, func(ref string) string {
			name := varRef.FindStringSubmatch(ref)[1]
			v, ok := env[name]
			if !ok {
				t.Errorf("argument %q refers to $(%s), which the container does not define", a, name)
			}
			return v
		})
	}
	return out
}

// checkSecurity checks what every kappa pod shares: not root, no secret
// in an argument, the SASL credentials from a Secret through the
// environment, and the TLS files the flags name inside a mounted Secret.
func checkSecurity(t *testing.T, spec corev1.PodSpec, c corev1.Container, env map[string]string, flags map[string]string) {
	t.Helper()
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("the pod may run as root: want securityContext.runAsNonRoot")
	}
	for _, a := range c.Args {
		if strings.Contains(strings.ToLower(a), "password") {
			t.Errorf("argument %q: credentials never go in arguments", a)
		}
	}
	for _, name := range []string{"KAPPA_SASL_USERNAME", "KAPPA_SASL_PASSWORD"} {
		if !strings.HasPrefix(env[name], "secret:") {
			t.Errorf("%s is %q, want it from a Secret", name, env[name])
		}
	}
	secretMounts := map[string]string{}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			for _, m := range c.VolumeMounts {
				if m.Name == v.Name {
					secretMounts[m.MountPath] = v.Secret.SecretName
				}
			}
		}
	}
	for _, f := range []string{"tls-ca", "tls-cert", "tls-key"} {
		path := flags[f]
		if path == "" {
			continue
		}
		in := false
		for dir := range secretMounts {
			in = in || strings.HasPrefix(path, dir+"/")
		}
		if !in {
			t.Errorf("--%s=%s is in no mounted Secret (mounted: %v)", f, path, secretMounts)
		}
	}
	if m := flags["sasl-mechanism"]; m != "" && !slices.Contains([]string{"plain", "scram-sha-256", "scram-sha-512"}, m) {
		t.Errorf("--sasl-mechanism=%s: kappa knows plain, scram-sha-256 and scram-sha-512", m)
	}
}

// probeRoutes checks the probes' paths against kappa's HTTP API: the
// liveness path answers 200 while the instance is not ready (a restoring
// instance must not be killed), the readiness path 503 until it is ready
// and 200 then.
func probeRoutes(t *testing.T, liveness, readiness string) {
	t.Helper()
	ready := false
	api, err := serve.New(serve.Config{Versions: noVersions{}, Ready: func(context.Context) (bool, error) { return ready, nil }})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) int {
		w := httptest.NewRecorder()
		api.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w.Code
	}
	if code := get(liveness); code != http.StatusOK {
		t.Errorf("liveness probe %s answers %d while not ready, want 200", liveness, code)
	}
	if code := get(readiness); code != http.StatusServiceUnavailable {
		t.Errorf("readiness probe %s answers %d while not ready, want 503", readiness, code)
	}
	ready = true
	if code := get(readiness); code != http.StatusOK {
		t.Errorf("readiness probe %s answers %d when ready, want 200", readiness, code)
	}
}

// noVersions is a serve.Versions with no version.
type noVersions struct{}

func (noVersions) Serving() string { return "" }
func (noVersions) Backend(string) (*serve.Backend, error) {
	return nil, errors.New("no version")
}

// portOf resolves a probe's or Service's target port to the container's
// port number.
func portOf(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Fatalf("port %q: the container has no port of that name", p.StrVal)
	return 0
}

func fmtPtr[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func mib(t *testing.T, flags map[string]string, name string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(flags[name], 10, 64)
	if err != nil {
		t.Fatalf("--%s=%q: %v", name, flags[name], err)
	}
	return n << 20
}

func duration(t *testing.T, flags map[string]string, name string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(flags[name])
	if err != nil {
		t.Fatalf("--%s=%q: %v (give it explicitly: the grace period is checked against it)", name, flags[name], err)
	}
	return d
}

// checkInstances checks the StatefulSet of `kappa process` and what goes
// with it.
func checkInstances(t *testing.T, r rendered, replicas int32, processFlags map[string]bool) {
	t.Helper()
	if len(r.statefulSets) != 1 {
		t.Fatalf("%d StatefulSets, want 1", len(r.statefulSets))
	}
	sts := r.statefulSets[0]
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != replicas {
		t.Errorf("replicas %v, want %d", sts.Spec.Replicas, replicas)
	}
	spec := sts.Spec.Template.Spec
	podLabels := labels.Set(sts.Spec.Template.Labels)
	sel, err := metaSelector(sts.Spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		t.Fatalf("the StatefulSet's selector does not match its pods' labels %v: %v", podLabels, err)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "process" {
		t.Fatalf("command %v args %v: want the image's entrypoint with args process …", c.Command, c.Args)
	}
	env := containerEnv(t, c, r.configMaps)
	args := expand(t, c.Args, env)
	flags := parseArgs(t, args, processFlags)

	// Stable instance ids: the pod name.
	if c.Args[slices.IndexFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--instance-id=") })] != "--instance-id=$(POD_NAME)" ||
		env["POD_NAME"] != "field:metadata.name" {
		t.Errorf("--instance-id is not the pod name (args %v, POD_NAME %q)", c.Args, env["POD_NAME"])
	}

	// The data directory is the pod's own volume.
	data := flags["data"]
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if m.MountPath == data {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("--data=%s: no volume is mounted there", data)
	}
	var claim *corev1.PersistentVolumeClaim
	for i, pvc := range sts.Spec.VolumeClaimTemplates {
		if pvc.Name == mount.Name {
			claim = &sts.Spec.VolumeClaimTemplates[i]
		}
	}
	if claim == nil || mount.ReadOnly {
		t.Fatalf("--data=%s is volume %s, not a writable volumeClaimTemplate", data, mount.Name)
	}
	if !slices.Contains(claim.Spec.AccessModes, corev1.ReadWriteOnce) || claim.Spec.Resources.Requests.Storage().IsZero() {
		t.Errorf("claim %s: access modes %v, storage %v; want ReadWriteOnce with a size", claim.Name, claim.Spec.AccessModes, claim.Spec.Resources.Requests.Storage())
	}

	// HTTP: the port, the probes, the Services, the advertised URL.
	_, httpPort, _ := strings.Cut(flags["http"], ":")
	if fmt.Sprint(portOf(t, c, intstr.FromString("http"))) != httpPort || !strings.HasPrefix(flags["http"], "0.0.0.0:") {
		t.Errorf("--http=%s: want 0.0.0.0 and the container port named http", flags["http"])
	}
	lp, rp := c.LivenessProbe, c.ReadinessProbe
	if lp == nil || lp.HTTPGet == nil || rp == nil || rp.HTTPGet == nil {
		t.Fatal("want HTTP liveness and readiness probes")
	}
	for _, p := range []*corev1.Probe{lp, rp} {
		if got := fmt.Sprint(portOf(t, c, p.HTTPGet.Port)); got != httpPort {
			t.Errorf("probe %s on port %s, want %s", p.HTTPGet.Path, got, httpPort)
		}
	}
	probeRoutes(t, lp.HTTPGet.Path, rp.HTTPGet.Path)
	peers, ok := r.services[sts.Spec.ServiceName]
	if !ok || peers.Spec.ClusterIP != corev1.ClusterIPNone || !peers.Spec.PublishNotReadyAddresses {
		t.Errorf("serviceName %s: want a headless Service publishing not-ready pods", sts.Spec.ServiceName)
	}
	if want := "http://$(POD_NAME)." + sts.Spec.ServiceName + ":" + httpPort; !slices.Contains(c.Args, "--advertise="+want) {
		t.Errorf("--advertise is not %s: peers reach a pod at its name in the headless Service", want)
	}
	clients := 0
	for name, s := range r.services {
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s does not select the pods", name)
		}
		for _, p := range s.Spec.Ports {
			if got := fmt.Sprint(portOf(t, c, p.TargetPort)); got != httpPort {
				t.Errorf("Service %s targets port %s, want %s", name, got, httpPort)
			}
		}
		if s.Spec.ClusterIP != corev1.ClusterIPNone {
			clients++
		}
	}
	if clients != 1 {
		t.Errorf("%d client Services, want 1", clients)
	}

	// Graceful stop: longer than the commit in flight, its transaction
	// and the HTTP shutdown (5 s).
	need := duration(t, flags, "commit-interval") + duration(t, flags, "transaction-timeout") + 5*time.Second
	if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= need {
		t.Errorf("terminationGracePeriodSeconds %s, want more than %s", fmtPtr(g), need)
	}

	// Memory: the limit holds the caches the flags size, the memtables
	// and the heap; GOMEMLIMIT sits below it.
	limit := c.Resources.Limits.Memory()
	caches := mib(t, flags, "cache-mib") + mib(t, flags, "recent-mib")
	if flags["similar"] == "true" {
		caches += mib(t, flags, "similar-cache-mib")
	}
	if limit.IsZero() || limit.Value() < caches+1<<30 {
		t.Errorf("memory limit %v, want at least the caches (%d MiB) and 1 GiB", limit, caches>>20)
	}
	if req := c.Resources.Requests.Memory(); req.Cmp(*limit) > 0 {
		t.Errorf("memory request %v above the limit %v", req, limit)
	}
	goLimit, err := resource.ParseQuantity(strings.NewReplacer("KiB", "Ki", "MiB", "Mi", "GiB", "Gi").Replace(env["GOMEMLIMIT"]))
	if err != nil || goLimit.Cmp(*limit) >= 0 || goLimit.Value() < caches {
		t.Errorf("GOMEMLIMIT %q: want between the caches and the memory limit %v", env["GOMEMLIMIT"], limit)
	}

	checkSecurity(t, spec, c, env, flags)

	// Spread over nodes; a disruption budget for the instances.
	spread := false
	for _, tsc := range spec.TopologySpreadConstraints {
		s, err := metaSelector(tsc.LabelSelector)
		if err != nil || !s.Matches(podLabels) {
			t.Errorf("topology spread on %s does not select the pods", tsc.TopologyKey)
		}
		spread = spread || (tsc.TopologyKey == "kubernetes.io/hostname" && tsc.MaxSkew == 1)
	}
	if !spread {
		t.Error("no topology spread over kubernetes.io/hostname with maxSkew 1")
	}
	if len(r.pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets, want 1", len(r.pdbs))
	}
	pdb := r.pdbs[0]
	s, err := metaSelector(pdb.Spec.Selector)
	if err != nil || !s.Matches(podLabels) {
		t.Error("the PodDisruptionBudget does not select the pods")
	}
	if mu := pdb.Spec.MaxUnavailable; mu == nil || mu.Type != intstr.Int || mu.IntVal != 1 || pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget: maxUnavailable %v, minAvailable %v; want maxUnavailable 1", mu, pdb.Spec.MinAvailable)
	}
}

// TestManifests renders the base (one instance, plaintext) and the
// three-instance overlay (TLS and SASL), and checks each against the
// binary's flags and routes.
func TestManifests(t *testing.T) {
	processFlags := kappaFlags(t, "process")
	for _, tc := range []struct {
		dir      string
		replicas int32
		tls      bool
		sasl     string
	}{
		{"k8s/base", 1, false, ""},
		{"k8s/overlays/three", 3, true, "scram-sha-512"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			r := render(t, tc.dir)
			checkInstances(t, r, tc.replicas, processFlags)
			c := r.statefulSets[0].Spec.Template.Spec.Containers[0]
			flags := parseArgs(t, expand(t, c.Args, containerEnv(t, c, r.configMaps)), processFlags)
			if got := flags["tls"] == "true"; got != tc.tls || flags["sasl-mechanism"] != tc.sasl {
				t.Errorf("--tls=%s --sasl-mechanism=%s, want %v and %q", flags["tls"], flags["sasl-mechanism"], tc.tls, tc.sasl)
			}
			if tc.tls && flags["tls-ca"] == "" {
				t.Error("TLS without --tls-ca: the example is for a private CA")
			}
		})
	}
}

// TestReplayJob renders the replay Job and checks that it is resumable
// (its --version is fixed), uses the deployment's ConfigMap and the same
// security settings, and that its arguments are kappa replay's.
func TestReplayJob(t *testing.T) {
	replayFlags := kappaFlags(t, "replay")
	base := render(t, "k8s/overlays/three")
	r := render(t, "k8s/replay")
	if len(r.jobs) != 1 {
		t.Fatalf("%d Jobs, want 1", len(r.jobs))
	}
	job := r.jobs[0]
	spec := job.Spec.Template.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("restartPolicy %s", spec.RestartPolicy)
	}
	if job.Namespace != base.statefulSets[0].Namespace {
		t.Errorf("the Job is in namespace %q, the deployment in %q", job.Namespace, base.statefulSets[0].Namespace)
	}
	c := spec.Containers[0]
	if c.Image != base.statefulSets[0].Spec.Template.Spec.Containers[0].Image {
		t.Errorf("the Job runs %s, the instances %s", c.Image, base.statefulSets[0].Spec.Template.Spec.Containers[0].Image)
	}
	if len(c.Args) == 0 || c.Args[0] != "replay" {
		t.Fatalf("args %v: want replay …", c.Args)
	}
	env := containerEnv(t, c, base.configMaps)
	flags := parseArgs(t, expand(t, c.Args, env), replayFlags)
	if v := flags["version"]; v == "" || !strings.HasSuffix(job.Name, "-"+v) {
		t.Errorf("--version=%q, Job %s: a retried pod must resume the version the Job is named after", v, job.Name)
	}
	if flags["from"] == "" {
		t.Error("no --from")
	}
	checkSecurity(t, spec, c, env, flags)
	inst := base.statefulSets[0].Spec.Template.Spec.Containers[0]
	for _, f := range []string{"brokers", "tls", "tls-ca", "tls-cert", "tls-key", "sasl-mechanism"} {
		want := parseArgs(t, expand(t, inst.Args, containerEnv(t, inst, base.configMaps)), kappaFlags(t, "process"))[f]
		if flags[f] != want {
			t.Errorf("--%s=%q, the instances have %q", f, flags[f], want)
		}
	}
}

// TestDecodeStrict checks that the decoding rejects what Kubernetes would
// not take: a misspelt field, a field at the wrong level.
func TestDecodeStrict(t *testing.T) {
	for _, y := range []string{
		"apiVersion: apps/v1\nkind: StatefulSet\nspec:\n  replica: 3\n",
		"apiVersion: apps/v1\nkind: StatefulSet\nspec:\n  template:\n    spec:\n      containers:\n        - name: x\n          livenessprobe: {}\n",
	} {
		var s appsv1.StatefulSet
		if err := decodeStrict([]byte(y), &s); err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("%q: got %v, want an unknown field", y, err)
		}
	}
}
