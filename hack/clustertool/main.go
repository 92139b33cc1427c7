// clustertool holds the helpers of hack/cluster.sh that are easier in Go than in shell:
//
//	clustertool certs    -dir D -node-name N -node-ip IP     PKI and kubeconfigs
//	clustertool registry -addr 127.0.0.1:5000 -dir D         a plain-HTTP OCI registry
//	clustertool pause-image -binary P -tag T -out F          the sandbox image, as a tarball for ctr
//	clustertool bases -registry R                             push the scratch and nonroot base images
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: clustertool certs|registry|pause-image|bases [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "certs":
		err = certs(os.Args[2:])
	case "registry":
		err = serveRegistry(os.Args[2:])
	case "pause-image":
		err = pauseImage(os.Args[2:])
	case "bases":
		err = bases(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertool:", err)
		os.Exit(1)
	}
}
