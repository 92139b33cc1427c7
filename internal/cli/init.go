package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/hotpod/hotpod/internal/config"
	"github.com/hotpod/hotpod/internal/initproject"
)

func newInitCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "init [DIR]",
		Short: "write a hotpod.yaml for the project in DIR (default: the current directory)",
		Long: `Reads the project (ko:// images in YAML files, Dockerfiles whose stages go build a main
package, skaffold.yaml, Helm charts, kustomizations, directories of manifests), prints what it
found and what it guessed, and writes DIR/hotpod.yaml, its guesses marked CHECK. It only reads
files: it runs nothing and contacts nothing. It never overwrites a hotpod.yaml.`,
		Args: maxArgs(1, "give at most one DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := env.Dir
			if len(args) == 1 {
				dir = inDir(env.Dir, args[0])
			}
			// Refused before looking: what init would print is of no use when it cannot write.
			dst := filepath.Join(dir, config.FileName)
			if _, err := os.Stat(dst); err == nil {
				return fmt.Errorf("%s already exists: hotpod init never overwrites; edit it, or remove it and run hotpod init again", dst)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			p, findings, err := initproject.Detect(dir)
			if err != nil {
				return err
			}
			for _, f := range findings {
				fmt.Fprintln(env.Stdout, f)
			}
			written, err := initproject.Write(dir, p)
			if err != nil {
				return err
			}
			guesses := 0
			for _, f := range findings {
				if f.Guess {
					guesses++
				}
			}
			services := fmt.Sprintf("%d services", len(p.Services))
			if len(p.Services) == 1 {
				services = "1 service"
			}
			fmt.Fprintf(env.Stdout, "wrote %s with %s", written, services)
			if guesses > 0 {
				fmt.Fprintf(env.Stdout, "; check the %d guesses (marked CHECK in it)", guesses)
			}
			fmt.Fprintln(env.Stdout)
			return nil
		},
	}
}
