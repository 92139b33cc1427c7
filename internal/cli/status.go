package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hotpod/hotpod/internal/kube"
	"github.com/hotpod/hotpod/internal/manifest"
	"github.com/hotpod/hotpod/internal/session"
)

type statusFlags struct {
	manifests ManifestFlags
	kube      KubeFlags
	output    OutputFlags
}

func newStatusCommand(env *Env) *cobra.Command {
	var f statusFlags
	cmd := &cobra.Command{
		Use:   "status [-f MANIFESTS | -k KUSTOMIZATION]",
		Short: "show the dev sessions in the cluster: each pod's service, binary, build, agent state",
		Long: `Lists the hotpod dev sessions in every namespace (or in -n), whether the hotpod that runs each
is alive or gone (a left-over session is taken over by the next hotpod dev on its manifests), and
for every pod under the agent: its service, the binary it runs, whether that is the session's
current build and which iteration shipped it, the agent's state and its restarts. A pod that
is not on the current build is flagged NOT current. With -f or -k, only the sessions that
applied these manifests.`,
		Example: `  hotpod status
  hotpod status -f k8s/ -o json`,
		Args: maxArgs(0, "status takes flags only: -n, -f, -k"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runStatus(cmd.Context(), *env, f) },
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	f.manifests.AddFlags(fs)
	f.kube.AddFlags(fs)
	f.output.AddFlags(fs)
	return cmd
}

func runStatus(ctx context.Context, env Env, f statusFlags) error {
	var objs []*manifest.Object
	if !f.manifests.Empty() {
		var err error
		if objs, _, err = f.manifests.Read(env.Dir, env.Stdin); err != nil {
			return err
		}
	}
	k, err := loadKube(ctx, &env, f.kube, nil)
	if err != nil {
		return err
	}
	var keep func(kube.SessionRecord) bool
	if !f.manifests.Empty() {
		type key struct{ kind, ns, name string }
		mine := map[key]bool{}
		for _, o := range objs {
			ns := o.GetNamespace()
			if ns == "" {
				ns = k.Namespace
			}
			mine[key{o.GetKind(), ns, o.GetName()}] = true
		}
		keep = func(r kube.SessionRecord) bool {
			for _, a := range r.Objects {
				// A cluster-scoped object has no namespace, whatever the manifests' default.
				if mine[key{a.Kind, a.Namespace, a.Name}] || a.Namespace == "" && mine[key{a.Kind, k.Namespace, a.Name}] {
					return true
				}
			}
			return false
		}
	}
	ss, err := session.Sessions(ctx, k, f.kube.Namespace, keep)
	if err != nil {
		return err
	}
	if f.output.JSON() {
		if ss == nil {
			ss = []session.Status{}
		}
		return json.NewEncoder(env.Stdout).Encode(struct {
			Sessions []session.Status `json:"sessions"`
		}{ss})
	}
	if len(ss) == 0 {
		where := "in the cluster"
		if f.kube.Namespace != "" {
			where = "in namespace " + f.kube.Namespace
		}
		if keep != nil {
			where += " for these manifests"
		}
		fmt.Fprintf(env.Stdout, "no hotpod dev session %s\n", where)
		return nil
	}
	return session.WriteText(env.Stdout, ss, time.Now())
}
