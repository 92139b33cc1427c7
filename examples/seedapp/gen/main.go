// gen writes blob/blob.bin: ~50 MB standing in for the kubectl binary the original measurement
// embedded. Deterministic (the same bytes every run, so only the edit changes between builds),
// and about as compressible as a Go binary.
package main

import (
	"bufio"
	"log"
	"math/rand/v2"
	"os"
)

const size = 50 << 20

func main() {
	f, err := os.Create("blob/blob.bin")
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	words := make([][]byte, 4096)
	for i := range words {
		words[i] = make([]byte, 4+r.IntN(28))
		for j := range words[i] {
			words[i][j] = byte(r.Uint32())
		}
	}
	// Half random bytes, half repeated "words": compresses to roughly half, like machine code.
	for n := 0; n < size; {
		var chunk []byte
		if r.IntN(2) == 0 {
			chunk = words[r.IntN(len(words))]
		} else {
			chunk = make([]byte, 16)
			for j := range chunk {
				chunk[j] = byte(r.Uint32())
			}
		}
		w.Write(chunk)
		n += len(chunk)
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}
