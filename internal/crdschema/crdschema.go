// Package crdschema validates CiliumNetworkPolicy and
// CiliumClusterwideNetworkPolicy objects against Cilium's own CRD schemas
// (the CRDs embedded in cilium v1.20.2), the way kube-apiserver does:
// unknown fields, the OpenAPI schema, and the CEL validation rules.
package crdschema

import (
	"context"
	"fmt"
	"maps"
	"slices"

	crdsv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/client/crds/v2"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// Validator validates objects of the kinds whose CRDs it was built from.
type Validator struct {
	kinds map[string]*kind // by apiVersion/kind
}

type kind struct {
	structural *structuralschema.Structural
	schema     validation.SchemaValidator
	cel        *cel.Validator
	namespaced bool
}

// Cilium returns a validator for cilium.io/v2 CiliumNetworkPolicy and
// CiliumClusterwideNetworkPolicy.
func Cilium() (*Validator, error) {
	v := &Validator{kinds: map[string]*kind{}}
	for _, f := range []string{"ciliumnetworkpolicies.yaml", "ciliumclusterwidenetworkpolicies.yaml"} {
		data, err := crdsv2.EmbedFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := v.add(data); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	return v, nil
}

func (v *Validator) add(crdYAML []byte) error {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(crdYAML, &crd); err != nil {
		return err
	}
	for _, ver := range crd.Spec.Versions {
		if ver.Schema == nil || ver.Schema.OpenAPIV3Schema == nil {
			continue
		}
		var internal apiextensions.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(ver.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			return err
		}
		ss, err := structuralschema.NewStructural(&internal)
		if err != nil {
			return err
		}
		sv, _, err := validation.NewSchemaValidator(&internal)
		if err != nil {
			return err
		}
		k := &kind{structural: ss, schema: sv, cel: cel.NewValidator(ss, true, celconfig.PerCallLimit), namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped}
		v.kinds[crd.Spec.Group+"/"+ver.Name+" "+crd.Spec.Names.Kind] = k
	}
	return nil
}

// Validate checks one object, decoded from JSON or YAML into plain maps,
// and returns what the apiserver would reject it for; unknown fields,
// which the apiserver drops (or rejects with strict field validation), are
// errors too. It does not change obj, which must hold only JSON values
// (as encoding/json or sigs.k8s.io/yaml decode them).
func (v *Validator) Validate(obj map[string]any) field.ErrorList {
	apiVersion, _ := obj["apiVersion"].(string)
	kindName, _ := obj["kind"].(string)
	k := v.kinds[apiVersion+" "+kindName]
	if k == nil {
		return field.ErrorList{field.NotSupported(field.NewPath("kind"), apiVersion+" "+kindName, v.supported())}
	}
	// Work on a copy: pruning removes what it reports.
	cp := runtime.DeepCopyJSON(obj)
	errs := validateMeta(cp, k.namespaced)
	opts := structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}
	for _, p := range pruning.PruneWithOptions(cp, k.structural, true, opts) {
		errs = append(errs, field.Invalid(field.NewPath(p), nil, "unknown field"))
	}
	errs = append(errs, validation.ValidateCustomResource(nil, cp, k.schema)...)
	if len(errs) == 0 {
		celErrs, _ := k.cel.Validate(context.Background(), nil, k.structural, cp, nil, celconfig.RuntimeCELCostBudget)
		errs = append(errs, celErrs...)
	}
	return errs
}

func (v *Validator) supported() []string {
	out := slices.Collect(maps.Keys(v.kinds))
	slices.Sort(out)
	return out
}

// validateMeta checks the name and namespace as the apiserver does for
// custom resources.
func validateMeta(obj map[string]any, namespaced bool) field.ErrorList {
	var errs field.ErrorList
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	ns, _ := meta["namespace"].(string)
	p := field.NewPath("metadata")
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), "name is required"))
	}
	for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(name, false) {
		if name != "" {
			errs = append(errs, field.Invalid(p.Child("name"), name, msg))
		}
	}
	switch {
	case namespaced && ns == "":
		errs = append(errs, field.Required(p.Child("namespace"), "namespace is required for a namespaced kind"))
	case !namespaced && ns != "":
		errs = append(errs, field.Forbidden(p.Child("namespace"), "not allowed on a cluster-scoped kind"))
	case ns != "":
		for _, msg := range apimachineryvalidation.ValidateNamespaceName(ns, false) {
			errs = append(errs, field.Invalid(p.Child("namespace"), ns, msg))
		}
	}
	return errs
}
