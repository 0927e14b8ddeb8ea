package diff

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Formats are the output formats of a Report.
var Formats = []string{"text", "json", "markdown", "github"}

// Write renders the report in one of Formats.
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "text":
		return r.writeText(w)
	case "json":
		return r.writeJSON(w)
	case "markdown":
		return r.writeMarkdown(w)
	case "github":
		return r.writeGitHub(w)
	}
	return fmt.Errorf("unknown format %q (want %s)", format, strings.Join(Formats, ", "))
}

func (r *Report) normalized() *Report {
	c := *r
	for _, s := range []*[]string{&c.Unresolved} {
		if *s == nil {
			*s = []string{}
		}
	}
	if c.DeniedButNeeded == nil {
		c.DeniedButNeeded = []DeniedFinding{}
	}
	if c.AllowedButUnused == nil {
		c.AllowedButUnused = []UnusedFinding{}
	}
	if c.Drift == nil {
		c.Drift = []DriftFinding{}
	}
	if c.Attribution == nil {
		c.Attribution = []AttributionFinding{}
	}
	return &c
}

func (r *Report) writeJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r.normalized(), "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Summary is the one-line count of findings.
func (r *Report) Summary() string {
	return fmt.Sprintf("%d denied but needed, %d allowed but unused, %d drift, %d attribution mismatches, %d unresolved",
		len(r.DeniedButNeeded), len(r.AllowedButUnused), len(r.Drift), len(r.Attribution), len(r.Unresolved))
}

func (r *Report) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Compared %d policies with %d observed edges, %s.\n", r.Policies, r.Edges, r.Window)
	if len(r.DeniedButNeeded) > 0 {
		fmt.Fprintf(tw, "\nDENIED BUT NEEDED (%d): observed traffic these policies would drop\n", len(r.DeniedButNeeded))
		for _, f := range r.DeniedButNeeded {
			fmt.Fprintf(tw, "  %s\n", f.Edge)
			fmt.Fprintf(tw, "    observed %s, %d flows, %s to %s\n", f.Observed, f.Flows, ts(f.First), ts(f.Last))
			if len(f.Requests) > 0 {
				fmt.Fprintf(tw, "    connection allowed; L7 requests denied: %s\n", strings.Join(f.Requests, ", "))
			} else {
				for _, d := range f.DeniedBy {
					fmt.Fprintf(tw, "    denied at %s by %s\n", d.Side, decidedBy(d.Policy, d.Rule, d.Source))
				}
			}
			if f.Fix != "" {
				fmt.Fprintf(tw, "    fix:\n")
				for _, l := range strings.Split(strings.TrimRight(f.Fix, "\n"), "\n") {
					fmt.Fprintf(tw, "      %s\n", l)
				}
			}
		}
	}
	if len(r.AllowedButUnused) > 0 {
		fmt.Fprintf(tw, "\nALLOWED BUT UNUSED (%d) in the window %s\n", len(r.AllowedButUnused), r.Window)
		fmt.Fprintln(tw, "  POLICY\tRULE\tUNUSED\tSOURCE")
		for _, f := range r.AllowedButUnused {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Policy, dash(f.Rule), f.what(), f.Source)
		}
	}
	if len(r.Drift) > 0 {
		fmt.Fprintf(tw, "\nDRIFT (%d): connections whose verdict differs\n", len(r.Drift))
		fmt.Fprintln(tw, "  CONNECTION\tOBSERVED\t--policies\t--against")
		for _, f := range r.Drift {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Edge, yesNo(f.Observed), f.Policies, f.Against)
		}
	}
	if len(r.Attribution) > 0 {
		fmt.Fprintf(tw, "\nATTRIBUTION (%d): Hubble and the evaluator disagree\n", len(r.Attribution))
		for _, f := range r.Attribution {
			fmt.Fprintf(tw, "  %s (%s): Hubble: %s; evaluator: %s\n", f.Edge, f.Direction, f.Hubble, f.Evaluator)
		}
	}
	if len(r.Unresolved) > 0 {
		fmt.Fprintf(tw, "\nUNRESOLVED (%d): references that need the cluster (try --live)\n", len(r.Unresolved))
		for _, u := range r.Unresolved {
			fmt.Fprintf(tw, "  %s\n", u)
		}
	}
	fmt.Fprintf(tw, "\n%s.\n", r.Summary())
	return tw.Flush()
}

func (f UnusedFinding) what() string {
	switch f.Kind {
	case "policy":
		return "selects no observed endpoint"
	case "rule":
		return "rule: peers " + f.Peer + "; ports " + f.Port
	case "peer":
		return "peer " + f.Peer
	case "port":
		return "port " + f.Port
	}
	return f.Kind
}

func decidedBy(policy, rule, source string) string {
	if policy == "" {
		return rule
	}
	s := policy + " " + rule
	if source != "" {
		s += " (" + source + ")"
	}
	return s
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no (--universe)"
}

func (r *Report) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("### cnpgen diff\n\n")
	fmt.Fprintf(&b, "Compared **%d policies** with **%d observed edges**, %s.\n\n", r.Policies, r.Edges, r.Window)
	fmt.Fprintf(&b, "%s.\n", r.Summary())
	if len(r.DeniedButNeeded) > 0 {
		fmt.Fprintf(&b, "\n#### Denied but needed (%d)\n\n| Connection | Observed | Flows | Denied at | By |\n|---|---|---:|---|---|\n", len(r.DeniedButNeeded))
		for _, f := range r.DeniedButNeeded {
			by := decidedBy(f.Policy, f.Rule, f.Source)
			if len(f.Requests) > 0 {
				by = "L7: " + strings.Join(f.Requests, ", ")
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s |\n", md(f.Edge), f.Observed, f.Flows, f.Side, md(by))
		}
		for _, f := range r.DeniedButNeeded {
			if f.Fix != "" {
				fmt.Fprintf(&b, "\n<details><summary>Fix for %s</summary>\n\n```yaml\n%s```\n</details>\n", md(f.Edge), f.Fix)
			}
		}
	}
	if len(r.AllowedButUnused) > 0 {
		fmt.Fprintf(&b, "\n#### Allowed but unused (%d), in %s\n\n| Policy | Rule | Unused | Source |\n|---|---|---|---|\n", len(r.AllowedButUnused), r.Window)
		for _, f := range r.AllowedButUnused {
			fmt.Fprintf(&b, "| %s | %s | %s | `%s` |\n", md(f.Policy), md(dash(f.Rule)), md(f.what()), f.Source)
		}
	}
	if len(r.Drift) > 0 {
		fmt.Fprintf(&b, "\n#### Drift (%d)\n\n| Connection | Observed | --policies | --against |\n|---|---|---|---|\n", len(r.Drift))
		for _, f := range r.Drift {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", md(f.Edge), yesNo(f.Observed), md(f.Policies), md(f.Against))
		}
	}
	if len(r.Attribution) > 0 {
		fmt.Fprintf(&b, "\n#### Attribution mismatches (%d)\n\n| Connection | Direction | Hubble | Evaluator |\n|---|---|---|---|\n", len(r.Attribution))
		for _, f := range r.Attribution {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", md(f.Edge), f.Direction, md(f.Hubble), md(f.Evaluator))
		}
	}
	if len(r.Unresolved) > 0 {
		fmt.Fprintf(&b, "\n#### Unresolved (%d)\n\n", len(r.Unresolved))
		for _, u := range r.Unresolved {
			fmt.Fprintf(&b, "- %s\n", md(u))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func md(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

var sourceRE = regexp.MustCompile(`^(.*):([0-9]+)(?:: .*)?$`)

// fileLine splits a policy's Source ("dir/p.yaml:12") for annotations.
func fileLine(source string) (string, int) {
	m := sourceRE.FindStringSubmatch(source)
	if m == nil {
		return "", 0
	}
	n, _ := strconv.Atoi(m[2])
	return m[1], n
}

// writeGitHub prints GitHub Actions workflow commands: one annotation per
// finding, on the policy file and line where there is one.
func (r *Report) writeGitHub(w io.Writer) error {
	var b strings.Builder
	annotate := func(level, title, source, msg string) {
		b.WriteString("::" + level)
		var props []string
		if file, line := fileLine(source); file != "" && file != "-" && !strings.HasPrefix(file, "cluster") {
			props = append(props, "file="+ghProp(file), "line="+strconv.Itoa(line))
		}
		props = append(props, "title="+ghProp(title))
		b.WriteString(" " + strings.Join(props, ","))
		b.WriteString("::" + ghData(msg) + "\n")
	}
	for _, f := range r.DeniedButNeeded {
		if len(f.Requests) > 0 {
			annotate("error", "denied but needed", f.Source, fmt.Sprintf("%s: L7 requests denied: %s", f.Edge, strings.Join(f.Requests, ", ")))
			continue
		}
		for _, d := range f.DeniedBy {
			msg := fmt.Sprintf("%s (observed %s, %d flows, last %s) is denied at %s by %s", f.Edge, f.Observed, f.Flows, ts(f.Last), d.Side, decidedBy(d.Policy, d.Rule, ""))
			if f.Fix != "" {
				msg += "\nfix:\n" + f.Fix
			}
			annotate("error", "denied but needed", d.Source, msg)
		}
	}
	for _, f := range r.Drift {
		annotate("error", "drift", "", fmt.Sprintf("%s: %s with --policies, %s with --against", f.Edge, f.Policies, f.Against))
	}
	for _, f := range r.AllowedButUnused {
		annotate("warning", "allowed but unused", f.Source, fmt.Sprintf("%s %s: %s (window %s)", f.Policy, dash(f.Rule), f.what(), r.Window))
	}
	for _, f := range r.Attribution {
		annotate("warning", "attribution mismatch", "", fmt.Sprintf("%s (%s): Hubble: %s; evaluator: %s", f.Edge, f.Direction, f.Hubble, f.Evaluator))
	}
	for _, u := range r.Unresolved {
		annotate("warning", "unresolved", "", u)
	}
	fmt.Fprintf(&b, "::notice title=cnpgen diff::%s\n", ghData(r.Summary()))
	_, err := io.WriteString(w, b.String())
	return err
}

func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func ghProp(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
