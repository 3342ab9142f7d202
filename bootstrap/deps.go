package bootstrap

// Dependencies imported by packages under construction; removed once they
// import them directly.
import (
	_ "github.com/google/btree"
	_ "github.com/rs/zerolog"
	_ "go.etcd.io/bbolt"
	_ "go.etcd.io/etcd/client/v3"
	_ "golang.org/x/sys/unix"
)
