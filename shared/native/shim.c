/*
 * flannel.node: the only native code of the project, a thin N-API layer over the syscalls Node has no
 * binding for. Everything above it (netlink framing, rtnetlink messages, namespaces) is TypeScript
 * (shared/kernel/netlink/, shared/fs/flock.ts); see shared/native/load.ts for how it is found.
 *
 * Conventions: every function takes and returns plain integers (and a Uint8Array for data); failures
 * come back as -errno instead of a thrown exception, so the hot path (one send, many recv) stays a
 * syscall plus a few N-API calls. Only misuse (wrong argument types) throws. EINTR is retried.
 * Every fd made here is O_CLOEXEC / SOCK_CLOEXEC: a process we exec never inherits a socket or a
 * namespace fd. flock keeps the return of the addon it replaces: 0, or the (positive) errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>
#include <node_api.h>

#define MAX_ARGS 4

/* Reads `n` int32 arguments; throws a TypeError naming `usage` when they are not there. */
static int int_args(napi_env env, napi_callback_info info, size_t n, int32_t *out, napi_value *argv, const char *usage) {
  size_t argc = MAX_ARGS;
  napi_value args[MAX_ARGS];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc < n) goto bad;
  for (size_t i = 0; i < argc && i < MAX_ARGS; i++) {
    if (argv != NULL) argv[i] = args[i];
    if (i < n && out != NULL && napi_get_value_int32(env, args[i], &out[i]) != napi_ok) goto bad;
  }
  return 0;
bad:
  napi_throw_type_error(env, NULL, usage);
  return -1;
}

/* The bytes of a Uint8Array (Buffer included). */
static int bytes_arg(napi_env env, napi_value v, void **data, size_t *len, const char *usage) {
  bool is_ta = false;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, len, data, &ab, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, usage);
    return -1;
  }
  return 0;
}

static napi_value int_result(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int32(env, (int32_t)v, &out);
  return out;
}

/* rc < 0 → -errno */
#define RESULT(rc) int_result(env, (rc) < 0 ? -errno : (rc))
#define RETRY(expr) ({ long _r; do { _r = (long)(expr); } while (_r < 0 && errno == EINTR); _r; })

/* flock(fd, op) → 0, or the errno (positive). Blocks the calling thread for LOCK_EX, as a CNI plugin wants. */
static napi_value js_flock(napi_env env, napi_callback_info info) {
  int32_t a[2];
  if (int_args(env, info, 2, a, NULL, "flock(fd, op): two integers expected") < 0) return NULL;
  long rc = RETRY(flock(a[0], a[1]));
  return int_result(env, rc == 0 ? 0 : errno);
}

/* socket(domain, type, protocol) → fd | -errno */
static napi_value js_socket(napi_env env, napi_callback_info info) {
  int32_t a[3];
  if (int_args(env, info, 3, a, NULL, "socket(domain, type, protocol): three integers expected") < 0) return NULL;
  long rc = socket(a[0], a[1] | SOCK_CLOEXEC, a[2]);
  return RESULT(rc);
}

/* bind(fd, groups) → 0 | -errno: a netlink address with a kernel-chosen port id and the multicast groups bitmask */
static napi_value js_bind(napi_env env, napi_callback_info info) {
  int32_t a[2];
  if (int_args(env, info, 2, a, NULL, "bind(fd, groups): two integers expected") < 0) return NULL;
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof(sa));
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = (uint32_t)a[1];
  long rc = bind(a[0], (struct sockaddr *)&sa, sizeof(sa));
  return RESULT(rc);
}

/* portId(fd) → the netlink port id the kernel gave the socket (what replies carry in nlmsg_pid) | -errno */
static napi_value js_port_id(napi_env env, napi_callback_info info) {
  int32_t a[1];
  if (int_args(env, info, 1, a, NULL, "portId(fd): an integer expected") < 0) return NULL;
  struct sockaddr_nl sa;
  socklen_t len = sizeof(sa);
  memset(&sa, 0, sizeof(sa));
  if (getsockname(a[0], (struct sockaddr *)&sa, &len) < 0) return int_result(env, -errno);
  napi_value out;
  napi_create_uint32(env, sa.nl_pid, &out);
  return out;
}

/* setsockopt(fd, level, opt, value) → 0 | -errno, for int options; SO_RCVTIMEO/SO_SNDTIMEO take milliseconds */
static napi_value js_setsockopt(napi_env env, napi_callback_info info) {
  int32_t a[4];
  if (int_args(env, info, 4, a, NULL, "setsockopt(fd, level, opt, value): four integers expected") < 0) return NULL;
  long rc;
  if (a[1] == SOL_SOCKET && (a[2] == SO_RCVTIMEO || a[2] == SO_SNDTIMEO)) {
    struct timeval tv = {.tv_sec = a[3] / 1000, .tv_usec = (a[3] % 1000) * 1000};
    rc = setsockopt(a[0], a[1], a[2], &tv, sizeof(tv));
  } else {
    int v = a[3];
    rc = setsockopt(a[0], a[1], a[2], &v, sizeof(v));
  }
  return RESULT(rc);
}

/* getsockopt(fd, level, opt) → the int value | -errno (to read back SO_RCVBUF) */
static napi_value js_getsockopt(napi_env env, napi_callback_info info) {
  int32_t a[3];
  if (int_args(env, info, 3, a, NULL, "getsockopt(fd, level, opt): three integers expected") < 0) return NULL;
  int v = 0;
  socklen_t len = sizeof(v);
  long rc = getsockopt(a[0], a[1], a[2], &v, &len);
  return int_result(env, rc < 0 ? -errno : v);
}

/* send(fd, bytes, length?) → bytes sent | -errno: one datagram to the kernel (port id 0) */
static napi_value js_send(napi_env env, napi_callback_info info) {
  int32_t a[1];
  napi_value argv[MAX_ARGS];
  size_t argc = MAX_ARGS;
  const char *usage = "send(fd, bytes: Uint8Array, length?: number) expected";
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &a[0]) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  void *data;
  size_t len;
  if (bytes_arg(env, argv[1], &data, &len, usage) < 0) return NULL;
  napi_valuetype t = napi_undefined;
  if (argc >= 3) napi_typeof(env, argv[2], &t);
  if (t == napi_number) {
    uint32_t n;
    napi_get_value_uint32(env, argv[2], &n);
    if (n < len) len = n;
  }
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof(sa));
  sa.nl_family = AF_NETLINK;
  long rc = RETRY(sendto(a[0], data, len, 0, (struct sockaddr *)&sa, sizeof(sa)));
  return RESULT(rc);
}

/* recv(fd, into, flags) → bytes received | -errno. With MSG_TRUNC in flags: the datagram's real length. */
static napi_value js_recv(napi_env env, napi_callback_info info) {
  int32_t fd, flags;
  napi_value argv[MAX_ARGS];
  size_t argc = MAX_ARGS;
  const char *usage = "recv(fd, into: Uint8Array, flags: number) expected";
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[2], &flags) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  void *data;
  size_t len;
  if (bytes_arg(env, argv[1], &data, &len, usage) < 0) return NULL;
  long rc = RETRY(recv(fd, data, len, flags));
  return RESULT(rc);
}

/* setns(fd, nstype) → 0 | -errno: switches the CALLING THREAD only */
static napi_value js_setns(napi_env env, napi_callback_info info) {
  int32_t a[2];
  if (int_args(env, info, 2, a, NULL, "setns(fd, nstype): two integers expected") < 0) return NULL;
  long rc = setns(a[0], a[1]);
  return RESULT(rc);
}

/* open(path, flags) → fd | -errno (O_CLOEXEC added) */
static napi_value js_open(napi_env env, napi_callback_info info) {
  int32_t flags;
  napi_value argv[MAX_ARGS];
  size_t argc = MAX_ARGS;
  char path[4096];
  size_t plen;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &plen) != napi_ok ||
      napi_get_value_int32(env, argv[1], &flags) != napi_ok) {
    napi_throw_type_error(env, NULL, "open(path: string, flags: number) expected");
    return NULL;
  }
  if (plen >= sizeof(path) - 1) return int_result(env, -ENAMETOOLONG);
  long rc = RETRY(open(path, flags | O_CLOEXEC));
  return RESULT(rc);
}

/* close(fd) → 0 | -errno (never retried: on Linux the fd is gone even when close reports EINTR) */
static napi_value js_close(napi_env env, napi_callback_info info) {
  int32_t a[1];
  if (int_args(env, info, 1, a, NULL, "close(fd): an integer expected") < 0) return NULL;
  long rc = close(a[0]);
  return RESULT(rc);
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"flock", js_flock},   {"socket", js_socket},         {"bind", js_bind},
      {"portId", js_port_id}, {"setsockopt", js_setsockopt}, {"getsockopt", js_getsockopt},
      {"send", js_send},     {"recv", js_recv},             {"setns", js_setns},
      {"open", js_open},     {"close", js_close},
  };
  for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}
