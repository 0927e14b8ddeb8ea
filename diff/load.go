package diff

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/cilium/pkg/policy/api"
	yamlv3 "go.yaml.in/yaml/v3"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/cnpgen/cnpgen/internal/crdschema"
)

// Policy kinds the loader reads.
const (
	KindCNP           = "CiliumNetworkPolicy"
	KindCCNP          = "CiliumClusterwideNetworkPolicy"
	KindNetworkPolicy = "NetworkPolicy"
)

// Policy is one policy object read from a file.
type Policy struct {
	Kind      string
	Namespace string
	Name      string
	// Source is where the object starts: file:line.
	Source string
	// Rules are a Cilium policy's spec and specs, sanitized.
	Rules api.Rules
	// NetworkPolicy is set for Kubernetes NetworkPolicies.
	NetworkPolicy *networkingv1.NetworkPolicy

	// hasSpec says Rules[0] came from spec, the rest from specs.
	hasSpec bool
	// file, doc and docStart locate the document, for RuleSource, which
	// parses it into root once.
	file     string
	doc      []byte
	docStart int
	root     *yamlv3.Node
}

// rulePath names rule i as the manifest does: "spec" or "specs[N]".
func (p *Policy) rulePath(i int) string {
	if p.hasSpec {
		if i == 0 {
			return "spec"
		}
		i--
	}
	return fmt.Sprintf("specs[%d]", i)
}

// Ref is the policy's reference in reports: Kind/namespace/name.
func (p *Policy) Ref() string {
	if p.Namespace == "" || p.Kind == KindCCNP {
		return p.Kind + "/" + p.Name
	}
	return p.Kind + "/" + p.Namespace + "/" + p.Name
}

// ciliumPolicy mirrors the CiliumNetworkPolicy and
// CiliumClusterwideNetworkPolicy CRD types (pkg/k8s/apis/cilium.io/v2
// cannot be imported here).
type ciliumPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              *api.Rule `json:"spec,omitempty"`
	Specs             api.Rules `json:"specs,omitempty"`
	Status            any       `json:"status,omitempty"`
}

// LoadPaths reads policies from files, directories (recursively, the
// .yaml, .yml and .json files in them) and "-" (stdin). Files hold one or
// more documents, and List objects as `kubectl get -o yaml` prints them;
// objects of other kinds are skipped. Errors name the file and line.
func LoadPaths(paths []string, stdin io.Reader) ([]*Policy, error) {
	var out []*Policy
	var errs []error
	add := func(ps []*Policy, err error) error {
		out = append(out, ps...)
		if le, ok := err.(*LoadError); ok {
			errs = append(errs, le.Errs...)
			return nil
		}
		return err
	}
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(io.LimitReader(stdin, MaxFileSize+1))
			if err != nil {
				return nil, fmt.Errorf("stdin: %w", err)
			}
			if err := add(Load("-", data)); err != nil {
				return nil, err
			}
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		var files []string
		if fi.IsDir() {
			err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				switch strings.ToLower(filepath.Ext(path)) {
				case ".yaml", ".yml", ".json":
					if !d.IsDir() {
						files = append(files, path)
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			slices.Sort(files)
		} else {
			files = []string{p}
		}
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil && fi.Size() > MaxFileSize {
				return nil, fmt.Errorf("%s: %d bytes, more than the %d MiB a policy file may have", f, fi.Size(), MaxFileSize>>20)
			}
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			if err := add(Load(f, data)); err != nil {
				return nil, err
			}
		}
	}
	if len(errs) > 0 {
		return out, &LoadError{Errs: errs}
	}
	return out, nil
}

// MaxFileSize bounds a policy file (and stdin): policies are small, and a
// huge input is a mistake or an attack.
const MaxFileSize = 64 << 20

// LoadError lists the documents that could not be loaded, each with its
// file and line. The loaders return it together with every policy that
// did load: callers decide whether that is fatal (--strict).
type LoadError struct {
	Errs []error
}

func (e *LoadError) Error() string {
	var b strings.Builder
	for i, err := range e.Errs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Load reads the policies of one file's contents; name is used in errors.
// Documents that are not valid policies — bad YAML, unknown fields,
// rules Cilium's Sanitize or its CRD schema reject — are reported in a
// *LoadError; the others are returned.
func Load(name string, data []byte) ([]*Policy, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d MiB a policy file may have", name, len(data), MaxFileSize>>20)
	}
	var out []*Policy
	var errs []error
	for _, doc := range splitDocuments(data) {
		if len(bytes.TrimSpace(doc.data)) == 0 {
			continue
		}
		ps, es := loadDoc(fmt.Sprintf("%s:%d", name, doc.line), doc.data, false)
		if len(ps) == 1 && ps[0].Source == fmt.Sprintf("%s:%d", name, doc.line) {
			// Not a List item: rules can be located in the document.
			ps[0].file, ps[0].doc, ps[0].docStart = name, doc.data, doc.start
		}
		out = append(out, ps...)
		errs = append(errs, es...)
	}
	if len(errs) > 0 {
		return out, &LoadError{Errs: errs}
	}
	return out, nil
}

type document struct {
	line  int
	start int // the line data starts at
	data  []byte
	blank bool // only blank and comment lines so far
}

// splitDocuments splits YAML at "---" lines, remembering where each
// document starts.
func splitDocuments(data []byte) []document {
	var docs []document
	cur := document{line: 1, start: 1}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		if strings.HasPrefix(t, "---") && strings.TrimSpace(strings.SplitN(t[3:], "#", 2)[0]) == "" {
			docs = append(docs, cur)
			cur = document{line: line + 1, start: line + 1}
			continue
		}
		if len(cur.data) == 0 || cur.blank {
			// A document starts at its first line that is not blank or
			// a comment: that is where reports point.
			if tt := strings.TrimSpace(t); tt == "" || strings.HasPrefix(tt, "#") {
				cur.line, cur.blank = line+1, true
			} else {
				cur.blank = false
			}
		}
		cur.data = append(append(cur.data, t...), '\n')
	}
	return append(docs, cur)
}

func loadDoc(where string, data []byte, inList bool) ([]*Policy, []error) {
	ps, err := loadObjectIn(where, data, inList)
	if le, ok := err.(*LoadError); ok {
		return ps, le.Errs
	}
	if err != nil {
		return ps, []error{err}
	}
	return ps, nil
}

// loadObject loads one object (a List's errors come as a *LoadError).
func loadObject(where string, data []byte) ([]*Policy, error) {
	return loadObjectIn(where, data, false)
}

// loadObjectIn loads an object, which is an item of a List if inList:
// Lists do not nest (and nesting them would cost time quadratic in depth).
func loadObjectIn(where string, data []byte, inList bool) ([]*Policy, error) {
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if len(obj) == 0 {
		return nil, nil // only comments
	}
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	switch head.Kind {
	case "List", KindCNP + "List", KindCCNP + "List", KindNetworkPolicy + "List":
		if inList {
			return nil, fmt.Errorf("%s: a %s inside a List", where, head.Kind)
		}
		var out []*Policy
		var errs []error
		for i, it := range head.Items {
			ps, es := loadDoc(fmt.Sprintf("%s: items[%d]", where, i), it, true)
			out = append(out, ps...)
			errs = append(errs, es...)
		}
		if len(errs) > 0 {
			return out, &LoadError{Errs: errs}
		}
		return out, nil
	case KindCNP, KindCCNP:
		var cp ciliumPolicy
		if err := yaml.UnmarshalStrict(data, &cp); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", where, head.Kind, err)
		}
		p := &Policy{Kind: head.Kind, Namespace: cp.Namespace, Name: cp.Name, Source: where}
		if cp.Spec != nil {
			p.Rules = append(p.Rules, cp.Spec)
			p.hasSpec = true
		}
		p.Rules = append(p.Rules, cp.Specs...)
		if len(p.Rules) == 0 {
			return nil, fmt.Errorf("%s: %s %s: neither spec nor specs", where, head.Kind, cp.Name)
		}
		if head.Kind == KindCNP && cp.Namespace == "" {
			p.Namespace = "default" // as kubectl apply would
		}
		for i, r := range p.Rules {
			c := r.DeepCopy()
			if err := c.Sanitize(); err != nil {
				return nil, fmt.Errorf("%s: %s %s: %s: %w", where, head.Kind, cp.Name, p.rulePath(i), err)
			}
		}
		if errs := validateSchema(obj); len(errs) > 0 {
			return nil, fmt.Errorf("%s: %s %s: %s", where, head.Kind, cp.Name, errs)
		}
		return []*Policy{p}, nil
	case KindNetworkPolicy:
		var np networkingv1.NetworkPolicy
		if err := yaml.UnmarshalStrict(data, &np); err != nil {
			return nil, fmt.Errorf("%s: NetworkPolicy: %w", where, err)
		}
		if np.Namespace == "" {
			np.Namespace = "default"
		}
		return []*Policy{{Kind: KindNetworkPolicy, Namespace: np.Namespace, Name: np.Name, Source: where, NetworkPolicy: &np}}, nil
	case "":
		return nil, fmt.Errorf("%s: %w", where, errNoKind)
	}
	// Other kinds (Kustomizations, Deployments, …) are not policies. Kinds
	// that would change verdicts in ways cnpgen does not model are named
	// rather than evaluated as if they were absent.
	if unmodelled[head.Kind] {
		return nil, fmt.Errorf("%s: %s (%s) is not evaluated by cnpgen; remove it from the input or treat verdicts as incomplete", where, head.Kind, head.APIVersion)
	}
	return nil, nil
}

// unmodelled are kinds that change policy verdicts but are not evaluated:
// CIDR groups (for cidrGroupRef) and Kubernetes' admin/cluster network
// policies (tiers; off by default in Cilium).
var unmodelled = map[string]bool{
	"CiliumCIDRGroup":            true,
	"AdminNetworkPolicy":         true,
	"BaselineAdminNetworkPolicy": true,
	"ClusterNetworkPolicy":       true,
}

var errNoKind = errors.New("object without a kind")

var (
	schemaOnce sync.Once
	crdSchema  *crdschema.Validator
	schemaErr  error
)

// validateSchema checks a CNP or CCNP against Cilium's CRD schema, as the
// apiserver does on apply.
func validateSchema(obj map[string]any) string {
	schemaOnce.Do(func() { crdSchema, schemaErr = crdschema.Cilium() })
	if schemaErr != nil {
		return "CRD schema: " + schemaErr.Error()
	}
	errs := crdSchema.Validate(obj)
	if len(errs) == 0 {
		return ""
	}
	return "rejected by the CRD schema: " + errs.ToAggregate().Error()
}

// UsesFQDN reports whether any policy has a toFQDNs rule.
func UsesFQDN(ps []*Policy) bool {
	for _, p := range ps {
		for _, r := range p.Rules {
			for _, e := range r.Egress {
				if len(e.ToFQDNs) > 0 {
					return true
				}
			}
		}
	}
	return false
}
