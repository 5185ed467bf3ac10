// What kind of ACK tap a process holds, seen from outside it (its app knows nothing of node-toa):
// the sock_ops program's attachment (a BPF link) or packet sockets.
import * as fs from 'node:fs';

/** The link targets of a process's descriptors (those that close meanwhile are left out). */
function fdTargets(pid: number): string[] {
  const targets: string[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      targets.push(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return targets;
}

/**
 * A BPF link's descriptor: the kernel names the one BPF_LINK_CREATE makes `bpf_link`, and one
 * taken by id (a process sharing the link another attached) `bpf-link`.
 */
export const BPF_LINK = /^anon_inode:bpf[_-]link$/;

/** The links `pid` made itself (BPF_LINK_CREATE), not taken by id from another process. */
export function createdLinks(pid: number): number {
  return fdTargets(pid).filter((target) => target === 'anon_inode:bpf_link').length;
}

/**
 * The BPF links and the packet sockets `pid` holds. Packet sockets are found in the process's own
 * network namespace (/proc/<pid>/net/packet), so a process in a test namespace is counted right.
 */
export function tapHandles(pid: number): { bpfLinks: number; packetSockets: number } {
  const inodes = new Set(
    fs.readFileSync(`/proc/${pid}/net/packet`, 'utf8').trim().split('\n').slice(1).map((line) => line.trim().split(/\s+/).pop()),
  );
  let bpfLinks = 0;
  let packetSockets = 0;
  for (const target of fdTargets(pid)) {
    if (BPF_LINK.test(target)) bpfLinks++;
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m && inodes.has(m[1])) packetSockets++;
  }
  return { bpfLinks, packetSockets };
}

/** The ids of the BPF programs `pid` holds attached to a cgroup through links (its sock_ops program). */
export function linkedPrograms(pid: number): number[] {
  const ids: number[] = [];
  const dir = `/proc/${pid}/fdinfo`;
  for (const fd of fs.readdirSync(dir)) {
    let info: string;
    try {
      info = fs.readFileSync(`${dir}/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    if (!/^link_type:\s*cgroup$/m.test(info)) continue;
    const id = /^prog_id:\s*(\d+)$/m.exec(info);
    if (id !== null) ids.push(Number(id[1]));
  }
  return ids;
}
