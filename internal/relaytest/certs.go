package relaytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs are a test CA and certificates signed by it, written as PEM files.
type Certs struct {
	CAFile, ServerCertFile, ServerKeyFile, ClientCertFile, ClientKeyFile string
	// ServerName is in the server certificate, as Hubble's
	// *.hubble-relay.cilium.io names are.
	ServerName string
	pool       *x509.CertPool
	server     tls.Certificate
}

// NewCerts makes a CA, a server certificate for 127.0.0.1 and ServerName,
// and a client certificate, in dir.
func NewCerts(tb testing.TB, dir string) *Certs {
	tb.Helper()
	c := &Certs{ServerName: "instance.hubble-relay.cilium.io"}
	caKey, caCert, caDER := newCert(tb, "cnpgen test CA", nil, nil, true, nil)
	c.CAFile = writePEM(tb, dir, "ca.crt", "CERTIFICATE", caDER)
	c.pool = x509.NewCertPool()
	c.pool.AddCert(caCert)
	sKey, _, sDER := newCert(tb, c.ServerName, caCert, caKey, false, []string{c.ServerName})
	c.ServerCertFile = writePEM(tb, dir, "server.crt", "CERTIFICATE", sDER)
	c.ServerKeyFile = writeKey(tb, dir, "server.key", sKey)
	cKey, _, cDER := newCert(tb, "cnpgen", caCert, caKey, false, nil)
	c.ClientCertFile = writePEM(tb, dir, "client.crt", "CERTIFICATE", cDER)
	c.ClientKeyFile = writeKey(tb, dir, "client.key", cKey)
	var err error
	if c.server, err = tls.LoadX509KeyPair(c.ServerCertFile, c.ServerKeyFile); err != nil {
		tb.Fatal(err)
	}
	return c
}

// ServerTLS is the server's TLS configuration; with mutual set it
// requires a client certificate signed by the CA.
func (c *Certs) ServerTLS(mutual bool) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{c.server}, MinVersion: tls.VersionTLS13}
	if mutual {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = c.pool
	}
	return cfg
}

func newCert(tb testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool, dns []string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     dns,
	}
	if dns != nil {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return key, cert, der
}

func writePEM(tb testing.TB, dir, name, typ string, der []byte) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func writeKey(tb testing.TB, dir, name string, key *ecdsa.PrivateKey) string {
	tb.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return writePEM(tb, dir, name, "EC PRIVATE KEY", der)
}
