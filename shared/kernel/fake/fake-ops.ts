// FakeOps: what one KernelOp does to a fake namespace, with the errno the kernel answers (ENODEV for a
// missing link, EEXIST for a strict create of something there, ...). FakeKernel's batch, inspect and
// seeding verbs all write through here.
import type { Link, KernelOp, Route } from '../kernel.js';
import { fail, famOf, netOf, normCidr, normKey, peersOf, type FakeNs, type FakeWorld } from './fake-world.js';

export const notFound = (what: string) => fail('ENODEV', what);
const exists = (what: string) => fail('EEXIST', what);
const noSuch = (what: string) => fail('ESRCH', what);

export class FakeOps {
  constructor(private readonly world: FakeWorld) {}

  link(ns: FakeNs, name: string): Link {
    const l = ns.links.get(name);
    if (l === undefined) throw notFound(name);
    return l;
  }

  newLink(ns: FakeNs, l: Omit<Link, 'index' | 'mac' | 'up' | 'mtu'> & { mtu?: number; mac?: string }): Link {
    if (ns.links.has(l.name)) throw exists(l.name);
    const link: Link = { ...l, index: this.world.nextIndex++, mtu: l.mtu || 1500, mac: l.mac ?? this.world.randomMac(), up: false };
    ns.links.set(l.name, link);
    return link;
  }

  /** Applies one write to `ns` with iproute2's error semantics. */
  applyOp(ns: FakeNs, op: KernelOp): void {
    switch (op.op) {
      case 'setLinkUp': {
        const l = this.link(ns, op.dev);
        l.up = true;
        l.operstate = this.operstate(l);
        this.refreshPeers(l);
        return;
      }
      case 'addBridge':
        this.newLink(ns, { name: op.name, kind: 'bridge', ...(op.mtu ? { mtu: op.mtu } : {}), bridge: { vlanFiltering: op.vlanFiltering === true } });
        return;
      case 'addVeth': {
        const peerNs = op.peerNetns === undefined ? ns : this.world.namespaces.get(op.peerNetns);
        if (peerNs === undefined) throw fail('EINVAL', `netns ${op.peerNetns}`);
        if (ns.links.has(op.name) || peerNs.links.has(op.peer)) throw exists(op.name);
        const a = this.newLink(ns, { name: op.name, kind: 'veth', ...(op.mtu ? { mtu: op.mtu } : {}), ...(op.mac ? { mac: op.mac } : {}) });
        const b = this.newLink(peerNs, { name: op.peer, kind: 'veth', ...(op.mtu ? { mtu: op.mtu } : {}), ...(op.peerMac ? { mac: op.peerMac } : {}) });
        a.peerIndex = b.index;
        b.peerIndex = a.index;
        a.operstate = 'DOWN';
        b.operstate = 'DOWN';
        this.peers.set(a, b);
        this.peers.set(b, a);
        return;
      }
      case 'setLink': {
        const l = this.link(ns, op.dev);
        if (op.mtu !== undefined) l.mtu = op.mtu;
        if (op.mac !== undefined) l.mac = op.mac.toLowerCase();
        if (op.promisc !== undefined) l.promisc = op.promisc;
        if (op.master !== undefined) {
          const br = this.link(ns, op.master);
          if (br.kind !== 'bridge') throw fail('EOPNOTSUPP', `link set dev ${op.dev} master ${op.master}`);
          l.master = op.master;
          l.port = { hairpin: false, isolated: false };
          if (!ns.vlans.has(op.dev)) ns.vlans.set(op.dev, [{ vid: 1, pvid: true, untagged: true }]);
        }
        if (op.up !== undefined) {
          l.up = op.up;
          l.operstate = op.up ? this.operstate(l) : 'DOWN';
          this.refreshPeers(l);
        }
        return;
      }
      case 'setBridgePort': {
        const l = this.link(ns, op.dev);
        if (l.port === undefined) throw fail('EOPNOTSUPP', `link set dev ${op.dev} type bridge_slave`);
        if (op.hairpin !== undefined) l.port.hairpin = op.hairpin;
        if (op.isolated !== undefined) l.port.isolated = op.isolated;
        return;
      }
      case 'deleteLink': {
        const l = this.link(ns, op.dev);
        this.dropLink(ns, l);
        const peer = this.peers.get(l);
        if (peer !== undefined) {
          for (const other of this.world.namespaces.values()) if (other.links.get(peer.name) === peer) this.dropLink(other, peer);
        }
        return;
      }
      case 'addAddr':
      case 'replaceAddr': {
        this.link(ns, op.dev);
        const cidr = normCidr(op.cidr);
        if (ns.addrs.some((a) => a.dev === op.dev && a.cidr === cidr)) {
          if (op.op === 'addAddr') throw exists(op.cidr);
          return;
        }
        const f = famOf(cidr);
        ns.addrs.push({ dev: op.dev, family: f, cidr, scope: 'global' });
        // the kernel adds the prefix route
        const prefix = Number(cidr.split('/')[1]);
        if (prefix < (f === 4 ? 32 : 128)) ns.routes.push({ family: f, dst: netOf(cidr), dev: op.dev, proto: 'kernel', scope: 'link', src: cidr.split('/')[0]! });
        return;
      }
      case 'deleteAddr': {
        const cidr = normCidr(op.cidr);
        const i = ns.addrs.findIndex((a) => a.dev === op.dev && a.cidr === cidr);
        if (i < 0) throw fail('EADDRNOTAVAIL', `addr del ${op.cidr} dev ${op.dev}`);
        ns.addrs.splice(i, 1);
        ns.routes = ns.routes.filter((r) => !(r.proto === 'kernel' && r.dev === op.dev && r.dst === netOf(cidr)));
        return;
      }
      case 'addRoute':
      case 'replaceRoute': {
        const r = op.route;
        if (r.dev !== undefined) this.link(ns, r.dev);
        const f = famOf(r.dst === 'default' ? r.via ?? '' : r.dst);
        const dst = r.dst === '::/0' || r.dst === '0.0.0.0/0' ? 'default' : r.dst;
        const i = ns.routes.findIndex((x) => x.family === f && x.dst === dst && (x.table ?? 254) === (r.table ?? 254) && (x.metric ?? 0) === (r.metric ?? 0));
        if (i >= 0 && op.op === 'addRoute') throw exists(r.dst);
        const route: Route = { ...r, family: f, dst };
        if (i >= 0) ns.routes[i] = route;
        else ns.routes.push(route);
        return;
      }
      case 'prependRoute': {
        // NLM_F_CREATE alone: only an identical route is in the way; it goes before the others
        const r = op.route;
        if (r.dev !== undefined) this.link(ns, r.dev);
        const f = famOf(r.dst === 'default' ? r.via ?? '' : r.dst);
        const dst = r.dst === '::/0' || r.dst === '0.0.0.0/0' ? 'default' : r.dst;
        const same = (x: Route) =>
          x.family === f && x.dst === dst && (x.table ?? 254) === (r.table ?? 254) && (x.metric ?? 0) === (r.metric ?? 0) && x.via === r.via && x.dev === r.dev && x.type === r.type;
        if (ns.routes.some(same)) throw exists(r.dst);
        const at = ns.routes.findIndex((x) => x.family === f && x.dst === dst);
        ns.routes.splice(at < 0 ? ns.routes.length : at, 0, { ...r, family: f, dst });
        return;
      }
      case 'addVxlan': {
        const { op: _, name, mtu, mac, ...spec } = op;
        const vxlan: NonNullable<Link['vxlan']> = { vni: spec.vni, port: spec.port, learning: spec.learning, gbp: spec.gbp === true };
        if (spec.local) vxlan.local = spec.local;
        if (spec.dev !== undefined) vxlan.dev = spec.dev;
        this.newLink(ns, { name, kind: 'vxlan', vxlan, ...(mtu ? { mtu } : {}), ...(mac ? { mac: mac.toLowerCase() } : {}) });
        return;
      }
      case 'addIpip':
        this.newLink(ns, { name: op.name, kind: 'ipip', ...(op.mtu ? { mtu: op.mtu } : {}) });
        return;
      case 'addWireguard':
        this.newLink(ns, { name: op.name, kind: 'wireguard', ...(op.mtu ? { mtu: op.mtu } : {}) });
        return;
      case 'deleteRoute': {
        const r = op.route;
        const dst = r.dst === '::/0' || r.dst === '0.0.0.0/0' ? 'default' : r.dst;
        const i = ns.routes.findIndex((x) => x.dst === dst && (r.dev === undefined || x.dev === r.dev) && (x.table ?? 254) === (r.table ?? 254));
        if (i < 0) throw noSuch(r.dst);
        ns.routes.splice(i, 1);
        return;
      }
      case 'replaceNeigh': {
        this.link(ns, op.dev);
        ns.neighs = ns.neighs.filter((n) => !(n.dev === op.dev && n.ip === op.ip));
        ns.neighs.push({ dev: op.dev, ip: op.ip, mac: op.mac.toLowerCase(), permanent: true });
        return;
      }
      case 'deleteNeigh': {
        const i = ns.neighs.findIndex((n) => n.dev === op.dev && n.ip === op.ip);
        if (i < 0) throw fail('ENOENT', `neigh del ${op.ip} dev ${op.dev}`);
        ns.neighs.splice(i, 1);
        return;
      }
      case 'replaceFdb':
      case 'appendFdb': {
        this.link(ns, op.dev);
        const mac = op.mac.toLowerCase();
        if (op.op === 'replaceFdb') ns.fdb = ns.fdb.filter((f) => !(f.dev === op.dev && f.mac === mac));
        if (!ns.fdb.some((f) => f.dev === op.dev && f.mac === mac && f.dst === op.dst)) {
          ns.fdb.push({ dev: op.dev, mac, dst: op.dst, self: true, permanent: true });
        }
        return;
      }
      case 'deleteFdb': {
        const mac = op.mac.toLowerCase();
        const i = ns.fdb.findIndex((f) => f.dev === op.dev && f.mac === mac && (op.dst === undefined || f.dst === op.dst));
        if (i < 0) throw fail('ENOENT', `fdb del ${op.mac} dev ${op.dev}`);
        ns.fdb.splice(i, 1);
        return;
      }
      case 'sysctl': {
        const key = normKey(op.key);
        const m = /^net\/ipv[46]\/conf\/([^/]+)\//.exec(key);
        if (m && !['all', 'default'].includes(m[1]!) && !ns.links.has(m[1]!)) {
          throw fail('ENOENT', `sysctl ${key}`);
        }
        ns.sysctls.set(key, op.value);
        return;
      }
      case 'addVlan':
      case 'deleteVlan': {
        this.link(ns, op.dev);
        let list = ns.vlans.get(op.dev) ?? [];
        const end = op.vidEnd ?? op.vid;
        for (let vid = op.vid; vid <= end; vid++) {
          list = list.filter((v) => v.vid !== vid);
          if (op.op === 'addVlan') {
            if (op.pvid) list = list.map((v) => ({ ...v, pvid: false }));
            list.push({ vid, pvid: op.pvid === true, untagged: op.untagged === true });
          }
        }
        ns.vlans.set(op.dev, list.sort((a, b) => a.vid - b.vid));
        return;
      }
    }
  }

  private get peers(): Map<Link, Link> {
    return peersOf(this.world);
  }

  private dropLink(ns: FakeNs, l: Link): void {
    ns.links.delete(l.name);
    ns.addrs = ns.addrs.filter((a) => a.dev !== l.name);
    ns.routes = ns.routes.filter((r) => r.dev !== l.name);
    ns.neighs = ns.neighs.filter((n) => n.dev !== l.name);
    ns.fdb = ns.fdb.filter((n) => n.dev !== l.name);
    ns.vlans.delete(l.name);
    for (const k of [...ns.sysctls.keys()]) if (k.includes(`/conf/${l.name}/`)) ns.sysctls.delete(k);
  }

  private operstate(l: Link): string {
    if (!l.up) return 'DOWN';
    if (l.kind === 'veth') {
      const peer = this.peers.get(l);
      return peer?.up ? 'UP' : 'LOWERLAYERDOWN';
    }
    return l.kind === 'bridge' ? 'UNKNOWN' : 'UP';
  }

  private refreshPeers(l: Link): void {
    const peer = this.peers.get(l);
    if (peer === undefined) return;
    l.operstate = this.operstate(l);
    peer.operstate = this.operstate(peer);
  }
}
