package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certs writes the PKI of a single-node cluster and a kubeconfig per component into -dir.
// Existing files are kept: a restarted cluster keeps its identity.
func certs(args []string) error {
	fs := flag.NewFlagSet("certs", flag.ExitOnError)
	dir := fs.String("dir", "", "output directory")
	node := fs.String("node-name", "", "node name")
	nodeIP := fs.String("node-ip", "", "node IP")
	svcIP := fs.String("service-ip", "10.96.0.1", "ClusterIP of the kubernetes service")
	server := fs.String("server", "https://127.0.0.1:6443", "apiserver URL for the kubeconfigs")
	fs.Parse(args)
	if *dir == "" || *node == "" || *nodeIP == "" {
		return fmt.Errorf("certs: -dir, -node-name and -node-ip are required")
	}
	if _, err := os.Stat(filepath.Join(*dir, "ca.crt")); err == nil {
		return nil
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	w := &pkiWriter{dir: *dir}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(*svcIP), net.ParseIP(*nodeIP)}
	ca := w.ca("hotpod-cluster-ca", "ca")
	fp := w.ca("hotpod-front-proxy-ca", "front-proxy-ca")
	w.leaf(fp, "front-proxy-client", "front-proxy-client", nil, false, nil, nil)
	w.leaf(ca, "apiserver", "kube-apiserver", nil, true,
		[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost", *node}, ips)
	w.leaf(ca, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, false, nil, nil)
	w.leaf(ca, "kubelet", *node, nil, true, []string{*node, "localhost"}, ips)
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	w.check(err)
	w.key("sa.key", sa)
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	w.check(err)
	w.file("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	for _, u := range []struct{ file, cn, org string }{
		{"admin", "hotpod-admin", "system:masters"},
		{"kube-controller-manager", "system:kube-controller-manager", ""},
		{"kube-scheduler", "system:kube-scheduler", ""},
		{"kubelet", "system:node:" + *node, "system:nodes"},
		{"kube-proxy", "system:kube-proxy", ""},
	} {
		var orgs []string
		if u.org != "" {
			orgs = []string{u.org}
		}
		kp := w.sign(ca, u.cn, orgs, false, nil, nil)
		w.file(u.file+".kubeconfig", kubeconfig(*server, ca.cert, kp))
	}
	return w.err
}

type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

type pkiWriter struct {
	dir string
	err error
}

func (w *pkiWriter) check(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}

func (w *pkiWriter) ca(cn, file string) keyPair {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	w.check(err)
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	w.check(err)
	cert, err := x509.ParseCertificate(der)
	w.check(err)
	kp := keyPair{cert, key}
	w.pair(file, kp)
	return kp
}

func (w *pkiWriter) sign(ca keyPair, cn string, orgs []string, server bool, dns []string, ips []net.IP) keyPair {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	w.check(err)
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if server {
		usage = append(usage, x509.ExtKeyUsageServerAuth)
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: usage,
		DNSNames: dns, IPAddresses: ips}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	w.check(err)
	cert, err := x509.ParseCertificate(der)
	w.check(err)
	return keyPair{cert, key}
}

func (w *pkiWriter) leaf(ca keyPair, file, cn string, orgs []string, server bool, dns []string, ips []net.IP) {
	w.pair(file, w.sign(ca, cn, orgs, server, dns, ips))
}

func (w *pkiWriter) pair(file string, kp keyPair) {
	if kp.cert == nil {
		return
	}
	w.file(file+".crt", certPEM(kp.cert))
	w.key(file+".key", kp.key)
}

func (w *pkiWriter) key(file string, k crypto.Signer) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	w.check(err)
	w.file(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func (w *pkiWriter) file(name string, b []byte) {
	w.check(os.WriteFile(filepath.Join(w.dir, name), b, 0o600))
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func kubeconfig(server string, ca *x509.Certificate, kp keyPair) []byte {
	if kp.cert == nil {
		return nil
	}
	der, _ := x509.MarshalPKCS8PrivateKey(kp.key)
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: hotpod
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: hotpod
  context: {cluster: hotpod, user: %s}
current-context: hotpod
`, server, b64(certPEM(ca)), kp.cert.Subject.CommonName, b64(certPEM(kp.cert)),
		b64(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), kp.cert.Subject.CommonName)
}
