package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/cnpgen/cnpgen/learn"
)

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{\"flow\":\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	flows := "../../testdata/flows/hubble-otel/basic-sample-5-dns-flows.json"
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"ok", []string{"learn", "-f", flows, "--graph", filepath.Join(dir, "g.json")}, exitOK},
		{"malformed, not strict", []string{"learn", "-f", bad, "--graph", filepath.Join(dir, "g2.json")}, exitOK},
		{"malformed, strict", []string{"learn", "--strict", "-f", bad, "--graph", filepath.Join(dir, "g3.json")}, exitError},
		{"missing input", []string{"learn", "-f", filepath.Join(dir, "nope"), "--graph", filepath.Join(dir, "g4.json")}, exitError},
		{"unreadable graph", []string{"merge", bad, "--graph", filepath.Join(dir, "g5.json")}, exitError},
		{"bad flag", []string{"learn", "--frobnicate"}, exitError},
		{"bad filter", []string{"learn", "-f", flows, "--verdict", "MAYBE"}, exitError},
		{"unknown command", []string{"frobnicate"}, exitError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if got := run(context.Background(), tc.args, strings.NewReader(""), &out, &errb); got != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", got, tc.code, errb.String())
			}
		})
	}
}

// fionread returns the number of unread bytes in a pipe.
func fionread(f *os.File) int {
	var n int32
	syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	return int(n)
}

// TestInterruptSavesGraph runs cnpgen learn on a pipe that stays open, as
// with `hubble observe --follow | cnpgen learn -f -`, and interrupts it:
// what was read is in the graph, and the exit code says interrupted.
func TestInterruptSavesGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	data, err := os.ReadFile("../../testdata/flows/hubble-otel/basic-sample-400-tcp-flows.json")
	if err != nil {
		t.Fatal(err)
	}
	graph := filepath.Join(t.TempDir(), "graph.json")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	cmd := exec.Command(os.Args[0], "learn", "--input-file", "-", "--graph", graph)
	cmd.Env = append(os.Environ(), "CNPGEN_RUN_MAIN=1")
	cmd.Stdin = r
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	// Wait until cnpgen has read everything from the pipe, then give it a
	// moment to learn what it read.
	deadline := time.Now().Add(30 * time.Second)
	for fionread(r) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitSignal {
		t.Fatalf("exit: %v, want code %d; stderr:\n%s", err, exitSignal, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say interrupted:\n%s", stderr.String())
	}
	f, err := os.Open(graph)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := learn.ReadGraph(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, edges := g.Len(); edges != 16 {
		t.Errorf("graph has %d edges, want the 16 of the whole capture; stderr:\n%s", edges, stderr.String())
	}
}

// TestDeployJobArgs parses the in-cluster Job's arguments with the real
// learn command, so the manifest cannot drift from the flags.
func TestDeployJobArgs(t *testing.T) {
	data, err := os.ReadFile("../../deploy/learn-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(data), "\n---\n")
	var job batchv1.Job
	if err := yaml.Unmarshal([]byte(docs[len(docs)-1]), &job); err != nil {
		t.Fatal(err)
	}
	args := job.Spec.Template.Spec.Containers[0].Args
	cmd := newLearnCmd()
	if err := cmd.ParseFlags(args[1:]); err != nil {
		t.Fatalf("job args %v: %v", args, err)
	}
	if s, _ := cmd.Flags().GetString("server"); s != "hubble-relay.kube-system.svc:80" {
		t.Errorf("--server %q", s)
	}
}
