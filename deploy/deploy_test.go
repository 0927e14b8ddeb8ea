// Package deploy_test checks the manifests in deploy/: they decode
// strictly as the Kubernetes types they claim to be.
package deploy_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
)

func TestManifestsDecodeStrictly(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	dec := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	jobs := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			obj, _, err := dec.Decode(doc, nil, nil)
			if err != nil {
				t.Errorf("%s document %d: %v", f, i+1, err)
				continue
			}
			if job, ok := obj.(*batchv1.Job); ok {
				jobs++
				if c := job.Spec.Template.Spec.Containers[0]; len(c.Args) == 0 || c.Args[0] != "learn" {
					t.Errorf("%s: job runs %v, want cnpgen learn", f, c.Args)
				}
			}
		}
	}
	if jobs == 0 {
		t.Error("no Job in deploy/")
	}
}
