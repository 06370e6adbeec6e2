"""High availability: a Patroni-managed PostgreSQL cluster with etcd on loopback."""
