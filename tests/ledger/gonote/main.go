// Verifies a signed note with Go's golang.org/x/mod/sumdb/note, the reference
// implementation of signed notes: the checkpoint on stdin, the log's verifier key as the
// first argument. Prints the verified and the unverified (other keys') signature names.
package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/note"
)

func main() {
	verifier, err := note.NewVerifier(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad verifier key:", err)
		os.Exit(2)
	}
	msg, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fmt.Fprintln(os.Stderr, "REJECTED:", err)
		os.Exit(1)
	}
	for _, s := range n.Sigs {
		fmt.Println("verified", s.Name)
	}
	for _, s := range n.UnverifiedSigs {
		fmt.Println("unverified", s.Name)
	}
}
