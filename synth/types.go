package synth

// The manifest types below mirror the CiliumNetworkPolicy CRD's fields
// that synth writes, in the CRD's order, so that YAML output reads as a
// person would write it: plain label keys, ports as strings, nothing
// empty. (The cilium v2 API package cannot be imported here.)

// Policy is a CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy.
type Policy struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       Spec       `json:"spec"`
}

// ObjectMeta is the part of Kubernetes' object metadata synth sets.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Spec is a policy rule.
type Spec struct {
	Description       string        `json:"description,omitempty"`
	EndpointSelector  Selector      `json:"endpointSelector"`
	Ingress           []IngressRule `json:"ingress,omitempty"`
	Egress            []EgressRule  `json:"egress,omitempty"`
	EnableDefaultDeny *DefaultDeny  `json:"enableDefaultDeny,omitempty"`
}

// DefaultDeny is enableDefaultDeny.
type DefaultDeny struct {
	Ingress *bool `json:"ingress,omitempty"`
	Egress  *bool `json:"egress,omitempty"`
}

// Selector is a label selector with plain keys.
type Selector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// IngressRule allows traffic from peers.
type IngressRule struct {
	FromEndpoints []Selector `json:"fromEndpoints,omitempty"`
	FromCIDR      []string   `json:"fromCIDR,omitempty"`
	FromEntities  []string   `json:"fromEntities,omitempty"`
	ToPorts       []PortRule `json:"toPorts,omitempty"`
	ICMPs         []ICMPRule `json:"icmps,omitempty"`
}

// EgressRule allows traffic to peers.
type EgressRule struct {
	ToEndpoints []Selector     `json:"toEndpoints,omitempty"`
	ToCIDR      []string       `json:"toCIDR,omitempty"`
	ToEntities  []string       `json:"toEntities,omitempty"`
	ToPorts     []PortRule     `json:"toPorts,omitempty"`
	ToFQDNs     []FQDNSelector `json:"toFQDNs,omitempty"`
	ICMPs       []ICMPRule     `json:"icmps,omitempty"`
}

// PortRule is one toPorts entry.
type PortRule struct {
	Ports []PortProtocol `json:"ports,omitempty"`
	Rules *L7Rules       `json:"rules,omitempty"`
}

// PortProtocol is a port, or a range with EndPort, and its protocol.
type PortProtocol struct {
	Port     string `json:"port"`
	EndPort  int32  `json:"endPort,omitempty"`
	Protocol string `json:"protocol"`
}

// L7Rules are the L7 rules of a port rule.
type L7Rules struct {
	HTTP []HTTPRule     `json:"http,omitempty"`
	DNS  []FQDNSelector `json:"dns,omitempty"`
}

// HTTPRule matches HTTP requests.
type HTTPRule struct {
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
	Host   string `json:"host,omitempty"`
}

// FQDNSelector matches DNS names.
type FQDNSelector struct {
	MatchName    string `json:"matchName,omitempty"`
	MatchPattern string `json:"matchPattern,omitempty"`
}

// ICMPRule allows ICMP types.
type ICMPRule struct {
	Fields []ICMPField `json:"fields"`
}

// ICMPField is an ICMP type of a family.
type ICMPField struct {
	Family string `json:"family,omitempty"`
	Type   int    `json:"type"`
}
