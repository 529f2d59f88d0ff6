// SPDX-License-Identifier: Apache-2.0
#include "sluice/bpf/tc.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>

namespace sluice::bpf {
namespace {

bpf_tc_hook makeHook(int ifindex, bpf_tc_attach_point where) {
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = where;
  return hook;
}

bpf_tc_opts makeOpts() {
  bpf_tc_opts o{};
  o.sz = sizeof(o);
  o.handle = kTcHandle;
  o.priority = kTcPriority;
  return o;
}

const char* whereName(bpf_tc_attach_point where) { return where == BPF_TC_INGRESS ? "ingress" : "egress"; }

Status attach(int ifindex, int progFd, bpf_tc_attach_point where) {
  bpf_tc_hook hook = makeHook(ifindex, where);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST)
    return Error::fromErrno(err, "create clsact qdisc on ifindex " + std::to_string(ifindex), CniCode::kBpf);
  bpf_tc_opts opts = makeOpts();
  opts.prog_fd = progFd;
  opts.flags = BPF_TC_F_REPLACE;
  err = bpf_tc_attach(&hook, &opts);
  if (err)
    return Error::fromErrno(err, std::string("attach tc ") + whereName(where) + " program on ifindex " +
                                     std::to_string(ifindex), CniCode::kBpf);
  return okStatus();
}

Status detach(int ifindex, bpf_tc_attach_point where) {
  bpf_tc_hook hook = makeHook(ifindex, where);
  bpf_tc_opts opts = makeOpts();
  int err = bpf_tc_detach(&hook, &opts);
  if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL)
    return Error::fromErrno(err, std::string("detach tc ") + whereName(where) + " program from ifindex " +
                                     std::to_string(ifindex), CniCode::kBpf);
  return okStatus();
}

Result<uint32_t> query(int ifindex, bpf_tc_attach_point where) {
  bpf_tc_hook hook = makeHook(ifindex, where);
  bpf_tc_opts opts = makeOpts();
  int err = bpf_tc_query(&hook, &opts);
  if (err == -ENOENT || err == -EINVAL) return 0u;  // no qdisc or no filter at our slot
  if (err)
    return Error::fromErrno(err, std::string("query tc ") + whereName(where) + " on ifindex " +
                                     std::to_string(ifindex), CniCode::kBpf);
  return opts.prog_id;
}

}  // namespace

Status attachTcIngress(int ifindex, int progFd) { return attach(ifindex, progFd, BPF_TC_INGRESS); }
Status detachTcIngress(int ifindex) { return detach(ifindex, BPF_TC_INGRESS); }
Result<uint32_t> tcIngressProgId(int ifindex) { return query(ifindex, BPF_TC_INGRESS); }
Status attachTcEgress(int ifindex, int progFd) { return attach(ifindex, progFd, BPF_TC_EGRESS); }
Status detachTcEgress(int ifindex) { return detach(ifindex, BPF_TC_EGRESS); }
Result<uint32_t> tcEgressProgId(int ifindex) { return query(ifindex, BPF_TC_EGRESS); }

Result<uint32_t> progId(int progFd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(progFd, &info, &len) != 0)
    return Error::fromErrno(errno, "inspect BPF program", CniCode::kBpf);
  return info.id;
}

}  // namespace sluice::bpf
