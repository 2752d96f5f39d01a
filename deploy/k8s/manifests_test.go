// Package k8s holds the tests of Floodgate's Kubernetes manifests: they decode
// strictly into the Kubernetes API types, and say what the stack needs.
package k8s

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// object is one decoded manifest and where it was written.
type object struct {
	file string
	kind string
	name string
	obj  any // *appsv1.Deployment, *corev1.Service, …
}

func (o object) String() string { return fmt.Sprintf("%s %s (%s)", o.kind, o.name, o.file) }

// kustomization is the part of a kustomization.yaml these tests read.
type kustomization struct {
	Resources          []string `json:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
		Envs  []string `json:"envs"`
	} `json:"configMapGenerator"`
}

// newTyped returns an empty typed object for a kind the manifests use.
func newTyped(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "batch/v1 Job":
		return &batchv1.Job{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, nil
	case "v1 Pod":
		return &corev1.Pod{}, nil
	}
	return nil, fmt.Errorf("no typed decoder for %s %s: add it to newTyped", apiVersion, kind)
}

// decodeDocs decodes every YAML document of r strictly (unknown or duplicate
// fields are errors) into its typed struct.
func decodeDocs(file string, r io.Reader) ([]object, error) {
	var out []object
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for i := 0; ; i++ {
		doc, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		if tm.Kind == "Kustomization" {
			continue // read by kustomize (TestKustomizeBuilds), not an API object
		}
		v, err := newTyped(tm.APIVersion, tm.Kind)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		if err := yaml.UnmarshalStrict(doc, v); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, tm.Kind, err)
		}
		var meta struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		yaml.Unmarshal(doc, &meta)
		out = append(out, object{file: file, kind: tm.Kind, name: meta.Metadata.Name, obj: v})
	}
}

// stripComments drops whole-line comments, so a document of comments alone reads
// as empty.
func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			b.Write(line)
		}
	}
	return b.Bytes()
}

// readTree decodes every YAML file under dir.
func readTree(t *testing.T, dir string) []object {
	t.Helper()
	var objs []object
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		got, err := decodeDocs(path, f)
		objs = append(objs, got...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// readKustomization reads dir/kustomization.yaml.
func readKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	return k
}

func TestEveryManifestDecodesStrictly(t *testing.T) {
	objs := readTree(t, ".")
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.kind]++
	}
	// The stack's five singletons-or-replicas and the gateways; the load Job.
	if kinds["Deployment"] != 6 || kinds["Job"] != 1 || kinds["Service"] != 6 {
		t.Fatalf("decoded %v: want 6 Deployments, 6 Services and the Job", kinds)
	}
}

// A strict decode refuses what the API would silently drop.
func TestStrictDecodingRefusesUnknownAndDuplicateFields(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"unknown field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndatta: {a: b}\n"},
		{"misplaced field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          readinesProbe: {}\n"},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n"},
		{"unknown kind", "apiVersion: v1\nkind: Frobnicator\nmetadata: {name: x}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeDocs(tc.name, strings.NewReader(tc.doc)); err == nil {
				t.Fatal("decoded")
			}
		})
	}
}

// flagValue returns the value after -name in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "-"+name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "-"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// portOf resolves a probe's port (a number or a container port's name).
func portOf(c corev1.Container, p corev1.HTTPGetAction) (int32, bool) {
	if p.Port.StrVal == "" {
		return p.Port.IntVal, true
	}
	for _, cp := range c.Ports {
		if cp.Name == p.Port.StrVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

func deployments(objs []object) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, o := range objs {
		if d, ok := o.obj.(*appsv1.Deployment); ok {
			out = append(out, d)
		}
	}
	return out
}

// Every role's readiness and liveness probes ask /healthz on the admin listener
// its arguments give it.
func TestEveryDeploymentProbesHealthzOnItsAdminPort(t *testing.T) {
	ds := deployments(readTree(t, "base"))
	var roles []string
	for _, d := range ds {
		for _, c := range d.Spec.Template.Spec.Containers {
			roles = append(roles, c.Args[0])
			admin, ok := flagValue(c.Args, "admin")
			if !ok {
				t.Errorf("deployment %s: container %s has no -admin", d.Name, c.Name)
				continue
			}
			want := admin[strings.LastIndexByte(admin, ':')+1:]
			for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				if p == nil || p.HTTPGet == nil {
					t.Errorf("deployment %s: container %s has no HTTP %s probe", d.Name, c.Name, kind)
					continue
				}
				port, ok := portOf(c, *p.HTTPGet)
				if p.HTTPGet.Path != "/healthz" || !ok || fmt.Sprint(port) != want {
					t.Errorf("deployment %s: %s probe on %s port %v (%d), want /healthz on -admin's %s", d.Name, kind, p.HTTPGet.Path, p.HTTPGet.Port.String(), port, want)
				}
			}
		}
	}
	slices.Sort(roles)
	if want := []string{"control", "gateway", "ipconf", "msg", "router", "state"}; !slices.Equal(roles, want) {
		t.Fatalf("roles %v, want %v", roles, want)
	}
}

// matches reports whether a label selector selects the pod template's labels.
func matches(t *testing.T, sel *metav1.LabelSelector, pod map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	return !s.Empty() && s.Matches(labels.Set(pod))
}

// Gateways are spread over the nodes, and advertise the pod's own address.
func TestGatewaysSpreadAndAdvertiseThePodAddress(t *testing.T) {
	var gw *appsv1.Deployment
	for _, d := range deployments(readTree(t, "base")) {
		if d.Name == "gateway" {
			gw = d
		}
	}
	if gw == nil {
		t.Fatal("no gateway Deployment")
	}
	spec, podLabels := gw.Spec.Template.Spec, gw.Spec.Template.Labels
	aa := spec.Affinity
	if aa == nil || aa.PodAntiAffinity == nil {
		t.Fatal("gateways have no pod anti-affinity")
	}
	anti := false
	for _, term := range aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		anti = anti || (term.PodAffinityTerm.TopologyKey == "kubernetes.io/hostname" && matches(t, term.PodAffinityTerm.LabelSelector, podLabels))
	}
	for _, term := range aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
		anti = anti || (term.TopologyKey == "kubernetes.io/hostname" && matches(t, term.LabelSelector, podLabels))
	}
	if !anti {
		t.Error("no anti-affinity term keeps gateways apart by node")
	}
	spread := false
	for _, c := range spec.TopologySpreadConstraints {
		spread = spread || (c.TopologyKey == "kubernetes.io/hostname" && c.MaxSkew == 1 && matches(t, c.LabelSelector, podLabels))
	}
	if !spread {
		t.Error("no topology spread constraint over nodes selects the gateways")
	}
	c := spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["POD_IP"] != "status.podIP" || env["POD_NAME"] != "metadata.name" {
		t.Fatalf("gateway env from the downward API: %v", env)
	}
	for _, f := range []string{"listen", "link", "admin"} {
		if v, _ := flagValue(c.Args, f); !strings.HasPrefix(v, "$(POD_IP):") {
			t.Errorf("gateway -%s %q: it must listen on the pod's address, which it advertises", f, v)
		}
	}
	if v, _ := flagValue(c.Args, "id"); v != "$(POD_NAME)" {
		t.Errorf("gateway -id %q, want $(POD_NAME)", v)
	}
}

// The load is an Indexed Job whose completion index is the loadgen segment, out
// of as many segments as the Job runs, all at once.
func TestLoadJobIsIndexedBySegment(t *testing.T) {
	var job *batchv1.Job
	for _, o := range readTree(t, "load") {
		if j, ok := o.obj.(*batchv1.Job); ok {
			job = j
		}
	}
	if job == nil {
		t.Fatal("no Job in load/")
	}
	s := job.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion || s.Completions == nil || s.Parallelism == nil ||
		*s.Completions != *s.Parallelism || *s.Completions < 1 {
		t.Fatalf("job: completion mode %v, completions %v, parallelism %v: want Indexed, equal", s.CompletionMode, s.Completions, s.Parallelism)
	}
	c := s.Template.Spec.Containers[0]
	if c.Args[0] != "loadgen" {
		t.Fatalf("job runs %v", c.Args)
	}
	seg, _ := flagValue(c.Args, "segment")
	if want := fmt.Sprintf("$(JOB_COMPLETION_INDEX)/%d", *s.Completions); seg != want {
		t.Errorf("-segment %q, want %q", seg, want)
	}
	indexed := false
	for _, e := range c.Env {
		indexed = indexed || (e.Name == "JOB_COMPLETION_INDEX" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']")
	}
	if !indexed {
		t.Error("JOB_COMPLETION_INDEX is not declared from the completion index annotation: $(JOB_COMPLETION_INDEX) would not expand")
	}
	if plan, _ := flagValue(c.Args, "plan"); !mountedFrom(s.Template.Spec, c, plan, "floodgate-plan") {
		t.Errorf("-plan %q is not on the floodgate-plan ConfigMap's volume", plan)
	}
	if s.Template.Spec.RestartPolicy != corev1.RestartPolicyNever || s.BackoffLimit == nil || *s.BackoffLimit != 0 {
		t.Error("a failed segment must not be rerun (restartPolicy Never, backoffLimit 0)")
	}
}

// mountedFrom reports whether path lies on a volume of the container that is the
// named ConfigMap.
func mountedFrom(spec corev1.PodSpec, c corev1.Container, path, configMap string) bool {
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(path, m.MountPath+"/") {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == configMap {
				return true
			}
		}
	}
	return false
}

// podSpecs returns every pod template (or pod) with its owner's name.
func podSpecs(objs []object) map[string]corev1.PodSpec {
	out := map[string]corev1.PodSpec{}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			out[o.String()] = v.Spec.Template.Spec
		case *batchv1.Job:
			out[o.String()] = v.Spec.Template.Spec
		case *corev1.Pod:
			out[o.String()] = v.Spec
		}
	}
	return out
}

// Every floodgate container runs one image (the other containers set their own
// command: the load's fetch pod).
func TestOneImageForEveryRole(t *testing.T) {
	images := map[string][]string{}
	for owner, spec := range podSpecs(readTree(t, ".")) {
		for _, c := range spec.Containers {
			if len(c.Command) == 0 {
				images[c.Image] = append(images[c.Image], owner)
			}
		}
	}
	if len(images) != 1 {
		t.Fatalf("floodgate containers use %d images: %v", len(images), images)
	}
}

// external are the objects the user creates (README.md says how), with the keys
// the manifests read from them: secrets stay out of the repository.
var external = map[string][]string{"Secret floodgate-keys": {"token-key", "cluster-key", "admin-token"}}

// Every ConfigMap, Secret and claim a pod refers to exists in its kustomization
// (or is one the README tells the user to create), with the keys read from it;
// every Service selects a Deployment's pods and names ports they have.
func TestEveryReferenceResolves(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for obj, keys := range external {
		name := strings.Fields(obj)[1]
		for _, k := range append([]string{name}, keys...) {
			if !bytes.Contains(readme, []byte(k)) {
				t.Errorf("README.md does not say how to create %s (its key %s)", obj, k)
			}
		}
	}
	for _, dir := range []string{"base", "load"} {
		t.Run(dir, func(t *testing.T) {
			objs := readTree(t, dir)
			have := map[string]map[string]bool{} // "Kind name" → keys
			for _, o := range objs {
				keys := map[string]bool{}
				switch v := o.obj.(type) {
				case *corev1.ConfigMap:
					for k := range v.Data {
						keys[k] = true
					}
				case *corev1.Secret:
					for k := range v.StringData {
						keys[k] = true
					}
					for k := range v.Data {
						keys[k] = true
					}
				}
				have[o.kind+" "+o.name] = keys
			}
			for _, g := range readKustomization(t, dir).ConfigMapGenerator {
				keys := map[string]bool{}
				for _, f := range g.Files {
					keys[filepath.Base(f)] = true
				}
				for _, f := range g.Envs {
					b, err := os.ReadFile(filepath.Join(dir, f))
					if err != nil {
						t.Fatal(err)
					}
					for line := range strings.Lines(string(b)) {
						if k, _, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
							keys[k] = true
						}
					}
				}
				have["ConfigMap "+g.Name] = keys
			}
			for obj, keys := range external {
				have[obj] = map[string]bool{}
				for _, k := range keys {
					have[obj][k] = true
				}
			}
			need := func(owner, obj, key string, optional bool) {
				keys, ok := have[obj]
				switch {
				case optional:
				case !ok:
					t.Errorf("%s refers to %s, which is nowhere", owner, obj)
				case key != "" && !keys[key]:
					t.Errorf("%s reads key %q of %s, which has %v", owner, key, obj, keys)
				}
			}
			opt := func(b *bool) bool { return b != nil && *b }
			for owner, spec := range podSpecs(objs) {
				for _, v := range spec.Volumes {
					if v.ConfigMap != nil {
						need(owner, "ConfigMap "+v.ConfigMap.Name, "", opt(v.ConfigMap.Optional))
					}
					if v.Secret != nil {
						need(owner, "Secret "+v.Secret.SecretName, "", opt(v.Secret.Optional))
					}
					if v.PersistentVolumeClaim != nil {
						need(owner, "PersistentVolumeClaim "+v.PersistentVolumeClaim.ClaimName, "", false)
					}
				}
				for _, c := range spec.Containers {
					for _, ef := range c.EnvFrom {
						if ef.ConfigMapRef != nil {
							need(owner, "ConfigMap "+ef.ConfigMapRef.Name, "", opt(ef.ConfigMapRef.Optional))
						}
						if ef.SecretRef != nil {
							need(owner, "Secret "+ef.SecretRef.Name, "", opt(ef.SecretRef.Optional))
						}
					}
					for _, e := range c.Env {
						if e.ValueFrom == nil {
							continue
						}
						if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
							need(owner, "ConfigMap "+r.Name, r.Key, opt(r.Optional))
						}
						if r := e.ValueFrom.SecretKeyRef; r != nil {
							need(owner, "Secret "+r.Name, r.Key, opt(r.Optional))
						}
					}
				}
			}
			for _, o := range objs {
				svc, ok := o.obj.(*corev1.Service)
				if !ok {
					continue
				}
				found := false
				for _, d := range deployments(objs) {
					if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
						continue
					}
					found = true
					for _, p := range svc.Spec.Ports {
						if _, ok := portOf(d.Spec.Template.Spec.Containers[0], corev1.HTTPGetAction{Port: p.TargetPort}); !ok {
							t.Errorf("%s: target port %s is not a port of %s", o, p.TargetPort.String(), d.Name)
						}
					}
				}
				if !found || len(svc.Spec.Selector) == 0 {
					t.Errorf("%s selects no Deployment's pods", o)
				}
			}
		})
	}
}

// kubectl kustomize builds every kustomization, and what it builds decodes
// strictly; each overlay sets its Redis mode.
func TestKustomizeBuilds(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: the kustomizations are not built (the manifests are still decoded by the other tests)")
	}
	for _, tc := range []struct{ dir, redisMode string }{
		{"base", "single"}, {"overlays/sentinel", "sentinel"}, {"overlays/cluster", "cluster"}, {"load", ""},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := exec.Command(kubectl, "kustomize", tc.dir)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kubectl kustomize %s: %v\n%s", tc.dir, err, stderr.String())
			}
			objs, err := decodeDocs("kustomize "+tc.dir, bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			if tc.redisMode == "" {
				return
			}
			mode := ""
			for _, o := range objs {
				if cm, ok := o.obj.(*corev1.ConfigMap); ok && cm.Name == "floodgate-redis" {
					mode = cm.Data["FLOODGATE_REDIS_MODE"]
				}
			}
			if mode != tc.redisMode {
				t.Errorf("FLOODGATE_REDIS_MODE %q, want %q", mode, tc.redisMode)
			}
		})
	}
}
