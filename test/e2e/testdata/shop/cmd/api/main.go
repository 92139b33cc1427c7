// api is the e2e tests' service shaped like a real one: an HTTP port with its greeting, kodata
// served under /static/, HTTPS with a self-signed certificate and a gRPC health service (h2c)
// for the probes of every kind, and a graceful stop on SIGTERM.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

const greeting = "shop api v1"

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, greeting) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("/static/", http.StripPrefix("/static/", http.FileServer(http.Dir(os.Getenv("KO_DATA_PATH")))))
	mux.HandleFunc("/args", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, os.Args[1:]) })

	servers := []*http.Server{{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	cert, err := selfSigned()
	if err != nil {
		log.Fatal(err)
	}
	servers = append(servers, &http.Server{Addr: ":8443", Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	grpc := &http.Server{Addr: ":9090", Handler: http.HandlerFunc(health), ReadHeaderTimeout: 5 * time.Second}
	grpc.Protocols = new(http.Protocols)
	grpc.Protocols.SetUnencryptedHTTP2(true)
	servers = append(servers, grpc)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errs := make(chan error, len(servers))
	for i, s := range servers {
		go func() {
			if i == 1 {
				errs <- s.ListenAndServeTLS("", "")
			} else {
				errs <- s.ListenAndServe()
			}
		}()
	}
	log.Printf("api listening on :%s, :8443 (https), :9090 (grpc health); kodata %s", port, filepath.Clean(os.Getenv("KO_DATA_PATH")))
	select {
	case err := <-errs:
		log.Fatal(err)
	case <-ctx.Done():
	}
	for _, s := range servers {
		s.Close()
	}
}

// health answers grpc.health.v1.Health/Check with SERVING: a gRPC frame holding the protobuf
// HealthCheckResponse{status: 1}, and grpc-status 0 in the trailer.
func health(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/grpc.health.v1.Health/Check" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte{0, 0, 0, 0, 2, 0x08, 0x01})
	w.Header().Set("Grpc-Status", "0")
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "api"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
