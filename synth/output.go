package synth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/cnpgen/cnpgen/internal/atomicfile"
)

// ClusterDir is the directory of clusterwide policies in WriteDir's
// output; no namespace can have this name.
const ClusterDir = "_clusterwide"

func policyPath(p *Policy) string {
	dir := p.Metadata.Namespace
	if dir == "" {
		dir = ClusterDir
	}
	return filepath.Join(dir, p.Metadata.Name+".yaml")
}

// YAML renders policies as a multi-document YAML stream.
func YAML(ps []*Policy) ([]byte, error) {
	var b bytes.Buffer
	for i, p := range ps {
		if i > 0 {
			b.WriteString("---\n")
		}
		y, err := yaml.Marshal(p)
		if err != nil {
			return nil, err
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// JSON renders policies as a Kubernetes List.
func JSON(ps []*Policy) ([]byte, error) {
	if ps == nil {
		ps = []*Policy{}
	}
	b, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": ps}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DirResult says what WriteDir did.
type DirResult struct {
	Written, Removed, Kept []string
}

// WriteDir writes one file per policy, DIR/<namespace>/<name>.yaml
// (DIR/_clusterwide/<name>.yaml for clusterwide policies), and a
// kustomization.yaml per namespace and at the root, so that `kubectl apply
// -k DIR` applies them all. Files cnpgen wrote before (labelled managed-by
// cnpgen) are replaced; other files are never touched — a policy whose
// file a person wrote is not written, and said so in Kept. With prune,
// cnpgen's files for workloads no longer in ps are removed.
func WriteDir(dir string, ps []*Policy, prune bool) (*DirResult, error) {
	res := &DirResult{}
	want := map[string]*Policy{}
	for _, p := range ps {
		want[policyPath(p)] = p
	}
	// What is there now.
	owned := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".yaml") || d.Name() == "kustomization.yaml" {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		mine, err := ownedByCnpgen(path)
		if err != nil {
			return err
		}
		owned[rel] = mine
		return nil
	})
	if err != nil {
		return nil, err
	}
	byNS := map[string][]string{}
	for _, rel := range slices.Sorted(maps.Keys(want)) {
		if mine, exists := owned[rel]; exists && !mine {
			res.Kept = append(res.Kept, rel)
			continue
		}
		y, err := YAML([]*Policy{want[rel]})
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := atomicfile.Write(path, y, 0o644); err != nil {
			return nil, err
		}
		res.Written = append(res.Written, rel)
	}
	for rel, mine := range owned {
		if _, ok := want[rel]; ok || !mine {
			continue
		}
		if prune {
			if err := os.Remove(filepath.Join(dir, rel)); err != nil {
				return nil, err
			}
			res.Removed = append(res.Removed, rel)
		}
	}
	slices.Sort(res.Removed)
	// Kustomizations list every policy file now in each namespace.
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") || d.Name() == "kustomization.yaml" {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		ns, file := filepath.Split(rel)
		if ns != "" {
			byNS[filepath.Clean(ns)] = append(byNS[filepath.Clean(ns)], file)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var namespaces []string
	for _, ns := range slices.Sorted(maps.Keys(byNS)) {
		namespaces = append(namespaces, ns)
		if err := writeKustomization(filepath.Join(dir, ns), byNS[ns]); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return res, writeKustomization(dir, namespaces)
}

func writeKustomization(dir string, resources []string) error {
	slices.Sort(resources)
	var b bytes.Buffer
	b.WriteString("# Written by cnpgen.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for _, r := range resources {
		fmt.Fprintf(&b, "- %s\n", r)
	}
	if len(resources) == 0 {
		b.Reset()
		b.WriteString("# Written by cnpgen.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n")
	}
	return atomicfile.Write(filepath.Join(dir, "kustomization.yaml"), b.Bytes(), 0o644)
}

// ownedByCnpgen reports whether a manifest file carries cnpgen's
// managed-by label.
func ownedByCnpgen(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return false, err
	}
	var obj struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return false, nil // not ours to judge, so not ours
	}
	return obj.Metadata.Labels[ManagedByLabel] == "cnpgen", nil
}
