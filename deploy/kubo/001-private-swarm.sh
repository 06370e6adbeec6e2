#!/bin/sh
# Runs inside the Kubo container after `ipfs init`, before the daemon starts: turns the node
# into a member of a private swarm that never talks to the public IPFS network.
set -eu

if [ ! -f "$IPFS_PATH/swarm.key" ]; then
  if [ -f /run/secrets/swarm.key ]; then
    cp /run/secrets/swarm.key "$IPFS_PATH/swarm.key"
  else
    # A fresh 256-bit pre-shared key; copy it to every other node of the same swarm.
    key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    printf '/key/swarm/psk/1.0.0/\n/base16/\n%s\n' "$key" >"$IPFS_PATH/swarm.key"
  fi
  chmod 600 "$IPFS_PATH/swarm.key"
fi

ipfs bootstrap rm --all
ipfs config --json Discovery.MDNS.Enabled false
ipfs config --json Routing.Type '"none"'
ipfs config --json AutoConf.Enabled false
ipfs config --json Addresses.Announce '[]'
# Only private addresses (10/8, 172.16/12, 192.168/16, fc00::/7) are dialled or announced:
# every public range is filtered, so the node cannot reach or be reached from the internet.
public_ranges='[
  "/ip4/0.0.0.0/ipcidr/5",
  "/ip4/8.0.0.0/ipcidr/7",
  "/ip4/11.0.0.0/ipcidr/8",
  "/ip4/12.0.0.0/ipcidr/6",
  "/ip4/16.0.0.0/ipcidr/4",
  "/ip4/32.0.0.0/ipcidr/3",
  "/ip4/64.0.0.0/ipcidr/2",
  "/ip4/128.0.0.0/ipcidr/3",
  "/ip4/160.0.0.0/ipcidr/5",
  "/ip4/168.0.0.0/ipcidr/6",
  "/ip4/172.0.0.0/ipcidr/12",
  "/ip4/172.32.0.0/ipcidr/11",
  "/ip4/172.64.0.0/ipcidr/10",
  "/ip4/172.128.0.0/ipcidr/9",
  "/ip4/173.0.0.0/ipcidr/8",
  "/ip4/174.0.0.0/ipcidr/7",
  "/ip4/176.0.0.0/ipcidr/4",
  "/ip4/192.0.0.0/ipcidr/9",
  "/ip4/192.128.0.0/ipcidr/11",
  "/ip4/192.160.0.0/ipcidr/13",
  "/ip4/192.169.0.0/ipcidr/16",
  "/ip4/192.170.0.0/ipcidr/15",
  "/ip4/192.172.0.0/ipcidr/14",
  "/ip4/192.176.0.0/ipcidr/12",
  "/ip4/192.192.0.0/ipcidr/10",
  "/ip4/193.0.0.0/ipcidr/8",
  "/ip4/194.0.0.0/ipcidr/7",
  "/ip4/196.0.0.0/ipcidr/6",
  "/ip4/200.0.0.0/ipcidr/5",
  "/ip4/208.0.0.0/ipcidr/4",
  "/ip4/224.0.0.0/ipcidr/3",
  "/ip6/::/ipcidr/1",
  "/ip6/8000::/ipcidr/2",
  "/ip6/c000::/ipcidr/3",
  "/ip6/e000::/ipcidr/4",
  "/ip6/f000::/ipcidr/5",
  "/ip6/f800::/ipcidr/6",
  "/ip6/fe00::/ipcidr/7"
]'
ipfs config --json Swarm.AddrFilters "$public_ranges"
ipfs config --json Addresses.NoAnnounce "$public_ranges"
ipfs config --json Swarm.RelayClient.Enabled false
ipfs config --json Swarm.RelayService.Enabled false
ipfs config --json Swarm.Transports.Network.Relay false
# The gateway speaks to the RPC API over the compose network; it is never published.
ipfs config Addresses.API /ip4/0.0.0.0/tcp/5001
ipfs config --json Addresses.Gateway '[]'
