package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// Env is a running apiserver.
type Env struct {
	// Config reaches the apiserver as a member of system:masters.
	Config *rest.Config
	// Kubeconfig is a kubeconfig file for the same user.
	Kubeconfig string
	// Dynamic is a dynamic client on Config.
	Dynamic dynamic.Interface
}

// BinDir returns the directory with kube-apiserver and etcd, building
// them with hack/kube.sh if needed.
func BinDir(tb testing.TB) string {
	tb.Helper()
	root, err := repoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "hack", "kube.sh"), "build")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		tb.Fatalf("hack/kube.sh build: %v\n%s", err, errb.String())
	}
	return string(bytes.TrimSpace(out.Bytes()))
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "kube.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("hack/kube.sh not found above the test's directory")
		}
		dir = parent
	}
}

// freePort returns a port that is free now. It picks below the kernel's
// ephemeral range (32768 and up on Linux), so a port chosen here is not
// taken in the meantime as the source port of some outgoing connection —
// which is how etcd once failed with "address already in use" in CI.
// Another test process can still pick the same port; Start retries then.
func freePort(tb testing.TB) int {
	tb.Helper()
	for range 1000 {
		port := 20000 + mrand.IntN(12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	tb.Fatal("no free loopback port in 20000-31999")
	return 0
}

// startAttempts is how often Start tries fresh ports when a server
// exits at once, because another process took its port first.
const startAttempts = 4

// Start starts etcd and kube-apiserver and stops them when the test ends.
func Start(tb testing.TB) *Env {
	tb.Helper()
	bin := BinDir(tb)
	var lastErr error
	for attempt := range startAttempts {
		env, err := startOnce(tb, bin, tb.TempDir())
		if err == nil {
			return env
		}
		lastErr = err
		tb.Logf("attempt %d: %v; retrying on other ports", attempt+1, err)
	}
	tb.Fatalf("kube-apiserver did not start in %d attempts: %v", startAttempts, lastErr)
	return nil
}

// errExited reports a server that stopped before it was ready.
type errExited struct{ name string }

func (e errExited) Error() string { return e.name + " exited before it was ready" }

func startOnce(tb testing.TB, bin, dir string) (*Env, error) {
	tb.Helper()
	etcdClient, etcdPeer, apiPort := freePort(tb), freePort(tb), freePort(tb)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	etcd := start(tb, dir, "etcd", filepath.Join(bin, "etcd"),
		"--name=test", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=test="+peerURL, "--unsafe-no-fsync", "--log-level=warn")
	if err := waitHTTP(etcd, etcdURL+"/health", "", 30*time.Second); err != nil {
		etcd.stop()
		return nil, err
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	keyFile := filepath.Join(dir, "sa.key")
	writeFile(tb, keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	tokenBytes := make([]byte, 16)
	rand.Read(tokenBytes)
	token := hex.EncodeToString(tokenBytes)
	tokenFile := filepath.Join(dir, "tokens.csv")
	writeFile(tb, tokenFile, []byte(token+",admin,admin,system:masters\n"))

	api := start(tb, dir, "kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-key-file="+keyFile,
		"--service-account-signing-key-file="+keyFile,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--enable-priority-and-fairness=false",
		"--disable-admission-plugins=ServiceAccount",
		"--v=0")

	host := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	if err := waitHTTP(api, host+"/readyz", token, 90*time.Second); err != nil {
		if _, exited := err.(errExited); exited {
			api.stop()
			etcd.stop()
			return nil, err
		}
		tb.Fatal(err)
	}
	cfg := &rest.Config{Host: host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 200, Burst: 400}

	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeFile(tb, kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context:
    cluster: test
    user: admin
current-context: test
`, host, token)))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &Env{Config: cfg, Kubeconfig: kubeconfig, Dynamic: dyn}, nil
}

func writeFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// process is a server started by start.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop terminates the process group, politely first.
func (p *process) stop() {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
}

// start runs a server process whose output goes to a log file, shown if
// the test fails, and which is stopped when the test ends.
func start(tb testing.TB, dir, name, path string, args ...string) *process {
	tb.Helper()
	logPath := filepath.Join(dir, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.stop()
		log.Close()
		if tb.Failed() {
			out, _ := os.ReadFile(logPath)
			tb.Logf("%s log:\n%s", name, out)
		}
	})
	return p
}

// waitHTTP polls url until it answers 200, p exits, or timeout passes.
func waitHTTP(p *process, url, token string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec G402 -- a self-signed test server
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if p.exited() {
			return errExited{p.name}
		}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s: %s", p.name, timeout, last)
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// ApplyCRDs creates CustomResourceDefinitions from YAML and waits until
// they are established.
func (e *Env) ApplyCRDs(tb testing.TB, crds ...[]byte) {
	tb.Helper()
	ctx := context.Background()
	var names []string
	for _, y := range crds {
		var obj map[string]any
		if err := yaml.Unmarshal(y, &obj); err != nil {
			tb.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: obj}
		if _, err := e.Dynamic.Resource(crdGVR).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			tb.Fatalf("create CRD %s: %v", u.GetName(), err)
		}
		names = append(names, u.GetName())
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range names {
		for {
			u, err := e.Dynamic.Resource(crdGVR).Get(ctx, n, metav1.GetOptions{})
			if err == nil && established(u) {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("CRD %s not established: %v", n, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func established(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
