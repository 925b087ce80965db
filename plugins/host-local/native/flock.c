/*
 * flock.node: flock(2) for host-local (see ../file-lock.ts for why and what it replaces).
 * exports.flock(fd, op) -> 0, or the errno. Blocks the calling thread while waiting for LOCK_EX,
 * which is what a CNI plugin process wants. Retries on EINTR.
 */
#include <errno.h>
#include <sys/file.h>
#include <node_api.h>

static napi_value do_flock(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1, op = 0;
  napi_value out;
  int rc;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &op) != napi_ok) {
    napi_throw_type_error(env, NULL, "flock(fd, op): two integers expected");
    return NULL;
  }
  do {
    rc = flock(fd, op);
  } while (rc != 0 && errno == EINTR);
  napi_create_int32(env, rc == 0 ? 0 : errno, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "flock", NAPI_AUTO_LENGTH, do_flock, NULL, &fn);
  napi_set_named_property(env, exports, "flock", fn);
  return exports;
}
