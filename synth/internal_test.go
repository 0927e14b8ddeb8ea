package synth

import (
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRenderPorts(t *testing.T) {
	in := []string{"8080/TCP", "8081/TCP", "8082/TCP", "53/UDP", "53/TCP", "9000/TCP", "9001/TCP"}
	want := []PortProtocol{{Port: "53", Protocol: "TCP"}, {Port: "53", Protocol: "UDP"}, {Port: "8080", EndPort: 8082, Protocol: "TCP"}, {Port: "9000", Protocol: "TCP"}, {Port: "9001", Protocol: "TCP"}}
	if diff := cmp.Diff(want, renderPorts(in, true)); diff != "" {
		t.Errorf("ranges (-want +got):\n%s", diff)
	}
	if got := renderPorts(in, false); len(got) != len(in) || got[0].Port != "53" {
		t.Errorf("without ranges: %v", got)
	}
}

func TestPathPattern(t *testing.T) {
	for _, tc := range []struct {
		path       string
		generalize bool
		match      []string
		noMatch    []string
	}{
		{"/products/42", false, []string{"/products/42", "/products/42?page=2"}, []string{"/products/43", "/products/42/x"}},
		{"/products/42", true, []string{"/products/42", "/products/7"}, []string{"/products/x", "/products"}},
		{"/a.b/c+d", false, []string{"/a.b/c+d"}, []string{"/axb/cd"}},
		{"/u/0b9a3c1e-2f4d-4a5b-8c6d-7e8f9a0b1c2d", true, []string{"/u/11111111-2222-3333-4444-555555555555"}, []string{"/u/me"}},
	} {
		re := regexp.MustCompile("^(?:" + pathPattern(tc.path, tc.generalize) + ")$")
		for _, m := range tc.match {
			if !re.MatchString(m) {
				t.Errorf("%s (generalize %v) does not match %s", re, tc.generalize, m)
			}
		}
		for _, m := range tc.noMatch {
			if re.MatchString(m) {
				t.Errorf("%s (generalize %v) matches %s", re, tc.generalize, m)
			}
		}
	}
}

func TestDNSName(t *testing.T) {
	for in, want := range map[string]string{
		"reviews-v1": "reviews-v1", "Shop_Front/End": "shop-front-end", "-lead": "lead", "": "workload",
		"x.y": "x.y", "日本": "workload",
	} {
		if got := dnsName(in); got != want {
			t.Errorf("dnsName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFQDNSelectors(t *testing.T) {
	names := []string{"a.example.com", "api.stripe.com", "b.example.com", "localhost"}
	want := []FQDNSelector{{MatchPattern: "*.example.com"}, {MatchName: "api.stripe.com"}, {MatchName: "localhost"}}
	if diff := cmp.Diff(want, fqdnSelectors(names, true)); diff != "" {
		t.Errorf("generalised (-want +got):\n%s", diff)
	}
	if got := fqdnSelectors(names, false); len(got) != 4 || got[0].MatchName != "a.example.com" {
		t.Errorf("exact: %v", got)
	}
}
