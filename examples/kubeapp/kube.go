package main

import (
	"log"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// watchConfigMaps keeps an informer on the namespace's ConfigMaps, as controllers and operators
// do, when WATCH_CONFIGMAPS=1 and the app runs in a cluster (its ServiceAccount must be allowed to
// list and watch them). The bench leaves it off: what it measures is the binary's size.
func watchConfigMaps(stop <-chan struct{}) {
	if os.Getenv("WATCH_CONFIGMAPS") != "1" {
		return
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		log.Printf("not watching ConfigMaps: %v", err)
		return
	}
	cs, err := typedcorev1.NewForConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	lw := cache.NewListWatchFromClient(cs.RESTClient(), "configmaps", os.Getenv("POD_NAMESPACE"), fields.Everything())
	_, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &corev1.ConfigMap{},
		ResyncPeriod:  10 * time.Minute,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { log.Printf("ConfigMap %s", obj.(*corev1.ConfigMap).Name) },
		},
	})
	informer.Run(stop)
}
