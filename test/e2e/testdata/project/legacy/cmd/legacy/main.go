// legacy is the service whose image is built elsewhere (in the test, as CI would): the image
// has a shell, this binary at /usr/local/bin/legacy and a static file it serves from
// /srv/static, which must still be there after hotpod swaps the binary.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"

	"example.com/proj/lib/greet"
)

func main() {
	static := flag.String("static", "/srv/static", "directory of static files")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "legacy says hello, %s\n", greet.Suffix())
	})
	http.HandleFunc("/static", func(w http.ResponseWriter, _ *http.Request) {
		b, err := os.ReadFile(filepath.Join(*static, "index.html"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(b)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
