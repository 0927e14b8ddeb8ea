package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Defaults of the hubble CLI (hubble/pkg/defaults).
const (
	DefaultServer  = "localhost:4245"
	DefaultTimeout = 5 * time.Second
	tlsPrefix      = "tls://"
)

// ConnOptions are the hubble CLI's connection flags.
type ConnOptions struct {
	Server            string
	TLS               bool
	TLSAllowInsecure  bool
	TLSCACertFiles    []string
	TLSClientCertFile string
	TLSClientKeyFile  string
	TLSServerName     string
	// Timeout bounds dialling and unary requests (hubble: 5s).
	Timeout           time.Duration
	BasicAuthUsername string
	BasicAuthPassword string
}

// usesTLS reports whether the connection is TLS: --tls or a tls:// server.
func (o *ConnOptions) usesTLS() bool { return o.TLS || strings.HasPrefix(o.Server, tlsPrefix) }

func (o *ConnOptions) target() string { return strings.TrimPrefix(o.Server, tlsPrefix) }

// Plaintext reports whether the options send flows in the clear to an
// address that is not loopback, which deserves a warning.
func (o *ConnOptions) Plaintext() bool {
	if o.usesTLS() {
		return false
	}
	host, _, err := net.SplitHostPort(o.target())
	if err != nil {
		host = o.target()
	}
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

func (o *ConnOptions) dialOptions() ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	if !o.usesTLS() {
		if o.BasicAuthUsername != "" {
			return nil, errors.New("basic authentication needs TLS (--tls or a tls:// server)")
		}
		return append(opts, grpc.WithTransportCredentials(insecure.NewCredentials())), nil
	}
	cfg := &tls.Config{
		InsecureSkipVerify: o.TLSAllowInsecure, // #nosec G402 -- the user asked for it with --tls-allow-insecure
		ServerName:         o.TLSServerName,
	}
	if len(o.TLSCACertFiles) > 0 {
		pool := x509.NewCertPool()
		for _, p := range o.TLSCACertFiles {
			pem, err := os.ReadFile(filepath.Clean(p))
			if err != nil {
				return nil, fmt.Errorf("--tls-ca-cert-files: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--tls-ca-cert-files %s: not a PEM encoded certificate", p)
			}
		}
		cfg.RootCAs = pool
	}
	switch {
	case o.TLSClientCertFile != "" && o.TLSClientKeyFile != "":
		c, err := tls.LoadX509KeyPair(o.TLSClientCertFile, o.TLSClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	case o.TLSClientCertFile != "" || o.TLSClientKeyFile != "":
		return nil, errors.New("--tls-client-cert-file and --tls-client-key-file go together")
	}
	opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if o.BasicAuthUsername != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(basicAuth{o.BasicAuthUsername, o.BasicAuthPassword}))
	}
	return opts, nil
}

type basicAuth struct{ user, password string }

func (b basicAuth) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(b.user+":"+b.password))}, nil
}

func (basicAuth) RequireTransportSecurity() bool { return true }

// Client is a connection to Hubble Relay.
type Client struct {
	opts ConnOptions
	conn *grpc.ClientConn
	obs  observer.ObserverClient
}

// ErrUnreachable wraps failures to reach the server at all.
var ErrUnreachable = errors.New("hubble relay unreachable")

// Dial connects to the server and checks that it answers ServerStatus
// within the timeout, so that a wrong address or certificate fails at
// once with a clear error.
func Dial(ctx context.Context, o ConnOptions) (*Client, *observer.ServerStatusResponse, error) {
	if o.Server == "" {
		o.Server = DefaultServer
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	opts, err := o.dialOptions()
	if err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient(o.target(), opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", o.Server, err)
	}
	c := &Client{opts: o, conn: conn, obs: observer.NewObserverClient(conn)}
	st, err := c.ServerStatus(ctx)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return c, st, nil
}

// ServerStatus asks the server for its status, within the timeout.
func (c *Client) ServerStatus(ctx context.Context) (*observer.ServerStatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	st, err := c.obs.ServerStatus(ctx, &observer.ServerStatusRequest{})
	switch status.Code(err) {
	case codes.OK:
		return st, nil
	case codes.Unavailable, codes.DeadlineExceeded:
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, c.opts.Server, cleanStatus(err))
	default:
		return nil, fmt.Errorf("hubble relay %s: %v", c.opts.Server, cleanStatus(err))
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Server is the address the client connects to.
func (c *Client) Server() string { return c.opts.Server }

// cleanStatus shortens gRPC's status errors for people.
func cleanStatus(err error) string {
	if st, ok := status.FromError(err); ok {
		msg := st.Message()
		msg = strings.TrimPrefix(msg, "connection error: desc = ")
		return strings.Trim(msg, `"`)
	}
	return err.Error()
}

// FormatStatus describes a ServerStatus for the user.
func FormatStatus(st *observer.ServerStatusResponse) string {
	s := fmt.Sprintf("hubble: %d/%d flows in buffer, %.1f flows/s seen", st.GetNumFlows(), st.GetMaxFlows(), st.GetFlowsRate())
	if n := st.GetNumConnectedNodes(); n != nil {
		s += fmt.Sprintf(", %d nodes connected", n.GetValue())
	}
	if n := st.GetNumUnavailableNodes(); n != nil && n.GetValue() > 0 {
		s += fmt.Sprintf(", %d unavailable (%s)", n.GetValue(), strings.Join(st.GetUnavailableNodes(), ", "))
	}
	return s
}
