package learn

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// PeerKind says what a peer is.
type PeerKind string

const (
	// PeerWorkload is a Cilium-managed pod, identified by its namespace and
	// identity labels.
	PeerWorkload PeerKind = "workload"
	// PeerEntity is a reserved identity: host, remote-node, kube-apiserver,
	// health, ingress, world (when no address is known), unmanaged, init.
	PeerEntity PeerKind = "entity"
	// PeerExternal is an address outside the cluster, with the DNS names
	// that resolved to it.
	PeerExternal PeerKind = "external"
)

// Peer is one end of an edge.
type Peer struct {
	Kind      PeerKind `json:"kind"`
	Cluster   string   `json:"cluster,omitempty"`
	Namespace string   `json:"namespace,omitempty"`
	// Labels are the identity labels policy can select ("k8s:app=x"),
	// without the namespace, namespace-label and cluster labels, which are
	// kept in Namespace, the graph's namespace table and Cluster. For
	// entities they are the reserved labels.
	Labels []string `json:"labels,omitempty"`
	// Workloads are the controllers seen owning the peer's pods.
	Workloads []Workload `json:"workloads,omitempty"`
	Entity    string     `json:"entity,omitempty"`
	IP        netip.Addr `json:"ip,omitzero"`
	// Names are DNS names Hubble reported for IP (destination_names).
	Names []string `json:"names,omitempty"`

	key string
}

// Key is the peer's identity in the graph: two observations with the same
// key are the same peer.
func (p *Peer) Key() string { return p.key }

// Label returns the value of a workload's label key (with or without a
// source prefix) and whether it is present.
func (p *Peer) Label(key string) (string, bool) {
	for _, l := range p.Labels {
		src, k, v := splitLabel(l)
		if k == key || src+":"+k == key {
			return v, true
		}
	}
	return "", false
}

// Name is a short human name for the peer: namespace/workload,
// entity:<name> or the address.
func (p *Peer) Name() string {
	switch p.Kind {
	case PeerWorkload:
		n := ""
		if len(p.Workloads) > 0 {
			n = p.Workloads[0].Name
		} else if v, ok := p.Label("app.kubernetes.io/name"); ok {
			n = v
		} else if v, ok := p.Label("app"); ok {
			n = v
		} else if v, ok := p.Label("k8s-app"); ok {
			n = v
		} else {
			n = "unnamed"
		}
		return p.Namespace + "/" + n
	case PeerEntity:
		return "entity:" + p.Entity
	default:
		return p.IP.String()
	}
}

func peerKey(p *Peer) string {
	var b strings.Builder
	switch p.Kind {
	case PeerWorkload:
		b.WriteString("w\x00")
		b.WriteString(p.Cluster)
		b.WriteByte(0)
		b.WriteString(p.Namespace)
		b.WriteByte(0)
		for _, l := range p.Labels {
			b.WriteString(l)
			b.WriteByte(',')
		}
		if len(p.Labels) == 0 && len(p.Workloads) > 0 {
			// Labels masked away: the workload name is all there is.
			b.WriteByte(0)
			b.WriteString(p.Workloads[0].Name)
		}
	case PeerEntity:
		b.WriteString("e\x00")
		b.WriteString(p.Entity)
		b.WriteByte(0)
		b.WriteString(strings.Join(p.Labels, ","))
	case PeerExternal:
		b.WriteString("x\x00")
		b.WriteString(p.IP.String())
	}
	return b.String()
}

const (
	labelNamespace      = "io.kubernetes.pod.namespace"
	labelNamespaceLabel = "io.cilium.k8s.namespace.labels."
	labelCluster        = "io.cilium.k8s.policy.cluster"
)

// ReservedName names a reserved identity number ("host" for 1), for
// flows that carry the number without labels.
func ReservedName(id uint32) (string, bool) {
	n, ok := reservedIdentities[id]
	return n, ok
}

// Reserved identity numbers (pkg/identity/numericidentity.go).
var reservedIdentities = map[uint32]string{
	1: "host", 2: "world", 3: "unmanaged", 4: "health", 5: "init",
	6: "remote-node", 7: "kube-apiserver", 8: "ingress", 9: "world-ipv4", 10: "world-ipv6",
}

// entityPrecedence orders reserved labels when an identity has several:
// the kube-apiserver on a host carries reserved:host and
// reserved:kube-apiserver, and the most specific one names the entity.
var entityPrecedence = []string{"kube-apiserver", "ingress", "health", "init", "unmanaged", "host", "remote-node", "world", "world-ipv4", "world-ipv6"}

// peerFromEndpoint derives the peer of one end of a flow. ip is that end's
// address; keep says whether a label is an identity label. It returns nil
// when the endpoint cannot be identified, and the namespace's labels.
func peerFromEndpoint(ep *Endpoint, ip netip.Addr, keep func(source, key string) bool) (*Peer, []string) {
	var reserved []string
	var world, cidr bool
	for _, l := range ep.Labels {
		src, key, _ := splitLabel(l)
		switch src {
		case "reserved":
			switch key {
			case "world", "world-ipv4", "world-ipv6":
				world = true
			case "unknown":
			default:
				reserved = append(reserved, key)
			}
		case "cidr", "fqdn", "cidrgroup":
			cidr = true
		}
	}
	if len(ep.Labels) == 0 {
		if name, ok := reservedIdentities[ep.Identity]; ok {
			if strings.HasPrefix(name, "world") {
				world = true
			} else {
				reserved = append(reserved, name)
			}
		}
	}
	switch {
	case len(reserved) > 0:
		p := &Peer{Kind: PeerEntity, Entity: pickEntity(reserved)}
		for _, r := range reserved {
			p.Labels = append(p.Labels, "reserved:"+r)
		}
		slices.Sort(p.Labels)
		p.key = peerKey(p)
		return p, nil
	case world && !cidr && ep.Namespace != "" && ep.PodName != "":
		// Hubble could not resolve the identity of a pod it names: old
		// L7 records report remote pods as reserved:world. It is a pod,
		// known by namespace and workload only.
		ep = &Endpoint{Namespace: ep.Namespace, PodName: ep.PodName, Cluster: ep.Cluster, Workloads: ep.Workloads}
	case world || cidr:
		if !ip.IsValid() {
			p := &Peer{Kind: PeerEntity, Entity: "world", Labels: []string{"reserved:world"}}
			p.key = peerKey(p)
			return p, nil
		}
		p := &Peer{Kind: PeerExternal, IP: ip}
		p.key = peerKey(p)
		return p, nil
	}
	// A pod. Trust the identity labels; fall back to namespace and pod name
	// when a field mask removed them.
	p := &Peer{Kind: PeerWorkload, Namespace: ep.Namespace, Cluster: ep.Cluster}
	var nsLabels []string
	for _, l := range ep.Labels {
		src, key, val := splitLabel(l)
		switch {
		case src == "gen" || src == "reserved":
			continue
		case key == labelNamespace:
			if p.Namespace == "" {
				p.Namespace = val
			}
			continue
		case key == labelCluster:
			p.Cluster = val
			continue
		case strings.HasPrefix(key, labelNamespaceLabel):
			nsLabels = append(nsLabels, key[len(labelNamespaceLabel):]+"="+val)
			continue
		}
		if keep(src, key) {
			p.Labels = append(p.Labels, l)
		}
	}
	if p.Namespace == "" {
		return nil, nil
	}
	if w := workloadOf(ep); w.Name != "" {
		p.Workloads = []Workload{w}
	}
	if len(p.Labels) == 0 && len(p.Workloads) == 0 {
		return nil, nil
	}
	p.key = peerKey(p)
	return p, nsLabels
}

func pickEntity(reserved []string) string {
	for _, e := range entityPrecedence {
		if slices.Contains(reserved, e) {
			return e
		}
	}
	return reserved[0]
}

// workloadOf names the controller of an endpoint's pod: from Hubble's
// workloads field when present, else guessed from the pod name.
func workloadOf(ep *Endpoint) Workload {
	if len(ep.Workloads) > 0 {
		return ep.Workloads[0]
	}
	return workloadFromPodName(ep.PodName)
}

// Kubernetes generates name suffixes from this alphabet
// (k8s.io/apimachinery/pkg/util/rand: no vowels, no 0, 1, 3).
const k8sRand = `[bcdfghjklmnpqrstvwxz2456789]`

var (
	deploymentPod  = regexp.MustCompile(`^(.+)-` + k8sRand + `{6,10}-` + k8sRand + `{5}$`)
	statefulSetPod = regexp.MustCompile(`^(.+)-(0|[1-9][0-9]*)$`)
	generatedPod   = regexp.MustCompile(`^(.+)-` + k8sRand + `{5}$`)
)

// workloadFromPodName guesses the owner of a pod from its name:
// name-<template hash>-<suffix> is a Deployment's, name-<ordinal> a
// StatefulSet's, name-<suffix> a DaemonSet's or Job's (kind unknown).
func workloadFromPodName(pod string) Workload {
	if pod == "" {
		return Workload{}
	}
	if m := deploymentPod.FindStringSubmatch(pod); m != nil {
		return Workload{Name: m[1], Kind: "Deployment"}
	}
	if m := statefulSetPod.FindStringSubmatch(pod); m != nil {
		return Workload{Name: m[1], Kind: "StatefulSet"}
	}
	if m := generatedPod.FindStringSubmatch(pod); m != nil {
		return Workload{Name: m[1]}
	}
	return Workload{Name: pod, Kind: "Pod"}
}
