package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsReady bounds the wait for a node to accept clients and for the
// routes between the nodes to form.
const natsReady = 15 * time.Second

// natsCluster is n embedded NATS servers joined by routes into one cluster.
type natsCluster struct {
	servers []*server.Server
}

// startNATSCluster starts n nodes on free 127.0.0.1 ports, each logging to
// its own file beside logPath (nats-1.log, …), and returns once every node
// has a route to every other.
func startNATSCluster(n int, logPath string) (*natsCluster, error) {
	clientPorts, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	routePorts, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	routes := make([]string, n)
	for i, p := range routePorts {
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(p)
	}
	nc := &natsCluster{}
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("nats-%d", i+1),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			Cluster: server.ClusterOpts{
				Name: "bachata",
				Host: "127.0.0.1",
				Port: routePorts[i],
			},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
			LogFile: strings.TrimSuffix(logPath, filepath.Ext(logPath)) + fmt.Sprintf("-%d.log", i+1),
			NoSigs:  true,
		}
		s, err := server.NewServer(o)
		if err != nil {
			nc.shutdown()
			return nil, fmt.Errorf("nats node %d: %w", i+1, err)
		}
		s.ConfigureLogger()
		go s.Start()
		nc.servers = append(nc.servers, s)
		if !s.ReadyForConnections(natsReady) {
			nc.shutdown()
			return nil, fmt.Errorf("nats node %d: not ready after %s", i+1, natsReady)
		}
	}
	if err := nc.waitRoutes(); err != nil {
		nc.shutdown()
		return nil, err
	}
	return nc, nil
}

// waitRoutes waits until every node routes to every other.
func (nc *natsCluster) waitRoutes() error {
	deadline := time.Now().Add(natsReady)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		done := true
		for _, s := range nc.servers {
			// A pair of nodes may hold several route connections (route
			// pooling); one per peer at least is what matters.
			done = done && s.NumRoutes() >= len(nc.servers)-1
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("nats cluster: routes not formed in time")
		}
	}
	return nil
}

// URL lists every node's client URL, comma-separated, as nats.Connect
// takes it: a client fails over between them.
func (nc *natsCluster) URL() string {
	urls := make([]string, len(nc.servers))
	for i, s := range nc.servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

func (nc *natsCluster) shutdown() {
	for _, s := range nc.servers {
		s.Shutdown()
	}
	for _, s := range nc.servers {
		s.WaitForShutdown()
	}
}

// freePorts returns n distinct free 127.0.0.1 ports. They are free when
// picked; another process may take one before it is bound, which the
// start then reports.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0") //nolint:noctx // a moment's listen to pick a port
		if err != nil {
			return nil, fmt.Errorf("pick a port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
