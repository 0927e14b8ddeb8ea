package diff

import (
	"fmt"
	"strings"

	slim_metav1 "github.com/cilium/cilium/pkg/k8s/slim/k8s/apis/meta/v1"
	"github.com/cilium/cilium/pkg/labels"
	"github.com/cilium/cilium/pkg/policy/api"
)

// Cluster is the part of a cluster's state policy evaluation needs
// besides the policies: Services for toServices, Pods for named ports,
// Namespaces for their labels.
type Cluster struct {
	Namespaces []Namespace
	Services   []Service
	Pods       []Pod
}

// Namespace is a namespace and its labels.
type Namespace struct {
	Name   string
	Labels map[string]string
}

// Service is a Kubernetes Service, as far as toServices is concerned.
type Service struct {
	Namespace, Name string
	Labels          map[string]string
	// Selector is empty for a Service without a selector.
	Selector map[string]string
}

// Pod is a pod's labels and named container ports.
type Pod struct {
	Namespace, Name string
	Labels          map[string]string
	Ports           []NamedPort
}

// NamedPort is a container port with a name.
type NamedPort struct {
	Name     string
	Port     uint16
	Protocol string // TCP, UDP, SCTP
}

// namedPort resolves a named port on the server of a connection: the
// pod's own ports when the pod is known, otherwise those of the pods its
// labels select (all must agree, as Cilium's named-port map requires).
// known is false when the cluster's pods were not given.
func (c *Cluster) namedPort(server *Identity, name, proto string) (port uint16, known bool) {
	if c == nil {
		return 0, false
	}
	found := uint16(0)
	for i := range c.Pods {
		p := &c.Pods[i]
		if p.Namespace != server.Namespace {
			continue
		}
		if server.Pod != "" {
			if p.Name != server.Pod {
				continue
			}
		} else if !podHasLabels(p, server.Labels) {
			continue
		}
		for _, np := range p.Ports {
			pp := np.Protocol
			if pp == "" {
				pp = "TCP"
			}
			if strings.EqualFold(np.Name, name) && pp == proto {
				if found != 0 && found != np.Port {
					return 0, true // conflicting definitions: Cilium resolves none
				}
				found = np.Port
			}
		}
	}
	return found, true
}

// podHasLabels reports whether every k8s label of the identity (other
// than the ones Cilium derives from namespace, account and cluster) is a
// label of the pod.
func podHasLabels(p *Pod, ls labels.LabelArray) bool {
	for _, l := range ls {
		if l.Source != labels.LabelSourceK8s || strings.HasPrefix(l.Key, "io.cilium.k8s.") || l.Key == labelPodNamespace {
			continue
		}
		if v, ok := p.Labels[l.Key]; !ok || v != l.Value {
			return false
		}
	}
	return true
}

// resolveService expands a toServices entry as the agent does
// (pkg/policy/k8s/service.go): a Service with a selector becomes a
// selector on its backend pods; one without a selector needs its
// EndpointSlices, which are not read, and is reported as unresolved.
func (ev *Evaluator) resolveService(svc api.Service, policyNS string) []*peerSelector {
	desc := "toServices"
	if svc.K8sService != nil {
		desc = fmt.Sprintf("toServices %s/%s", svc.K8sService.Namespace, svc.K8sService.ServiceName)
	} else if svc.K8sServiceSelector != nil {
		desc = "toServices selector " + compileSelector(api.EndpointSelector(svc.K8sServiceSelector.Selector)).text
	}
	if ev.cluster == nil {
		return []*peerSelector{{unresolved: desc + " is not resolved (needs the cluster's Services)", text: desc}}
	}
	var out []*peerSelector
	for i := range ev.cluster.Services {
		s := &ev.cluster.Services[i]
		if !serviceMatches(svc, s) {
			continue
		}
		if len(s.Selector) == 0 {
			out = append(out, &peerSelector{unresolved: fmt.Sprintf("%s: Service %s/%s has no selector; its endpoints are not read", desc, s.Namespace, s.Name), text: desc})
			continue
		}
		ml := map[string]string{}
		for k, v := range s.Selector {
			ml[labels.LabelSourceK8sKeyPrefix+k] = v
		}
		ml[labels.LabelSourceK8sKeyPrefix+labelPodNamespace] = s.Namespace
		ml[labels.LabelSourceK8sKeyPrefix+labelPolicyCluster] = ev.clusterName
		sel := compileSelector(api.NewESFromK8sLabelSelector("", &slim_metav1.LabelSelector{MatchLabels: ml}))
		out = append(out, &peerSelector{labels: sel, text: fmt.Sprintf("service %s/%s", s.Namespace, s.Name)})
	}
	if len(out) == 0 {
		// The agent keeps the rule without peers; say so rather than guess.
		return []*peerSelector{{unresolved: desc + " matches no Service", text: desc}}
	}
	return out
}

func serviceMatches(ref api.Service, s *Service) bool {
	switch {
	case ref.K8sService != nil:
		return ref.K8sService.ServiceName == s.Name && (ref.K8sService.Namespace == "" || ref.K8sService.Namespace == s.Namespace)
	case ref.K8sServiceSelector != nil:
		if ref.K8sServiceSelector.Namespace != "" && ref.K8sServiceSelector.Namespace != s.Namespace {
			return false
		}
		sel := compileSelector(api.EndpointSelector(ref.K8sServiceSelector.Selector))
		var lbls []string
		for k, v := range s.Labels {
			lbls = append(lbls, labels.LabelSourceK8sKeyPrefix+k+"="+v)
		}
		return sel.matches(labels.ParseLabelArray(lbls...))
	}
	return false
}
