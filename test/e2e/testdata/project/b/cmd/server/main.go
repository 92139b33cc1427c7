// server (b) answers with its own greeting and the shared suffix.
package main

import (
	"fmt"
	"log"
	"net/http"

	"example.com/proj/lib/greet"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "b says hello, %s\n", greet.Suffix())
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
