/* proc.c — test-only Lua module `test.proc`: start real child processes, signal them, reap them
 * under a deadline, sleep and read clocks. Lua 5.4 has no process API and Debian ships no
 * luaposix for 5.4, so the specs get these few calls from here. Never part of lxshm itself. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compat.h" /* one source for every Lua runtime, as the module itself */

static int fail_errno(lua_State *L, const char *what) {
  int e = errno;
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(e));
  lua_pushinteger(L, e);
  return 3;
}

/* Opens `path` for writing (appending) onto fd `target` in the child. */
static void redirect(const char *path, int target) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd >= 0) {
    dup2(fd, target);
    close(fd);
  }
}

/* spawn({prog, arg...} [, {stdout=path, stderr=path, env={K=V}}]) -> pid | nil, msg */
static int proc_spawn(lua_State *L) {
  lua_Integer i, n;
  const char **argv;
  const char *out = NULL, *errp = NULL;
  pid_t pid;

  luaL_checktype(L, 1, LUA_TTABLE);
  n = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, n >= 1, 1, "empty argument list");
  argv = (const char **)lxshm_newuserdata(L, sizeof(char *) * (size_t)(n + 1), 0);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, (int)i);
    argv[i - 1] = luaL_checkstring(L, -1);
    lua_pop(L, 1); /* the table keeps the string alive */
  }
  argv[n] = NULL;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "stdout");
    out = lua_tostring(L, -1);
    lua_getfield(L, 2, "stderr");
    errp = lua_tostring(L, -1);
    lua_getfield(L, 2, "env");
  }
  pid = fork();
  if (pid < 0)
    return fail_errno(L, "fork");
  if (pid == 0) {
    if (lua_istable(L, -1)) {
      lua_pushnil(L);
      while (lua_next(L, -2) != 0) {
        setenv(lua_tostring(L, -2), lua_tostring(L, -1), 1);
        lua_pop(L, 1);
      }
    }
    if (out != NULL)
      redirect(out, 1);
    if (errp != NULL)
      redirect(errp, 2);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  lua_pushinteger(L, pid);
  return 1;
}

static int signal_number(lua_State *L, int arg) {
  static const char *const names[] = {"KILL", "TERM", "INT", "STOP", "CONT", "USR1", NULL};
  static const int numbers[] = {SIGKILL, SIGTERM, SIGINT, SIGSTOP, SIGCONT, SIGUSR1};
  if (lua_type(L, arg) == LUA_TNUMBER)
    return (int)luaL_checkinteger(L, arg);
  return numbers[luaL_checkoption(L, arg, "KILL", names)];
}

/* kill(pid [, signal name or number]) -> true | nil, msg */
static int proc_kill(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  if (kill(pid, signal_number(L, 2)) != 0)
    return fail_errno(L, "kill");
  lua_pushboolean(L, 1);
  return 1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_for(double s) {
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  nanosleep(&ts, NULL);
}

/* wait(pid [, timeout]) -> "exit", code | "signal", signo | nil, "timeout" | nil, msg */
static int proc_wait(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  double deadline = now() + luaL_optnumber(L, 2, 1e9);
  int status;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      break;
    if (r < 0 && errno != EINTR)
      return fail_errno(L, "waitpid");
    if (now() >= deadline) {
      lua_pushnil(L);
      lua_pushliteral(L, "timeout");
      return 2;
    }
    sleep_for(0.001);
  }
  if (WIFEXITED(status)) {
    lua_pushliteral(L, "exit");
    lua_pushinteger(L, WEXITSTATUS(status));
  }
  else {
    lua_pushliteral(L, "signal");
    lua_pushinteger(L, WTERMSIG(status));
  }
  return 2;
}

static int proc_sleep(lua_State *L) {
  sleep_for(luaL_checknumber(L, 1));
  return 0;
}

static int proc_now(lua_State *L) {
  lua_pushnumber(L, now());
  return 1;
}

/* proc.wallclock() -> seconds since the epoch, to the microsecond or better: the clock a
 * segment's `updated` is read from (os.time() is whole seconds, and may lag it by a tick). */
static int proc_wallclock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

static int proc_pid(lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}

/* file_mode(path) -> permission bits | nil, msg */
static int proc_file_mode(lua_State *L) {
  struct stat sb;
  if (stat(luaL_checkstring(L, 1), &sb) != 0)
    return fail_errno(L, "stat");
  lua_pushinteger(L, sb.st_mode & 07777);
  return 1;
}

/* listdir(path) -> { name, ... } (without "." and "..") | nil, msg */
static int proc_listdir(lua_State *L) {
  DIR *d = opendir(luaL_checkstring(L, 1));
  struct dirent *e;
  lua_Integer n = 0;
  if (d == NULL)
    return fail_errno(L, "opendir");
  lua_newtable(L);
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  return 1;
}

/* umask(mask) -> previous mask */
static int proc_umask(lua_State *L) {
  lua_pushinteger(L, umask((mode_t)luaL_checkinteger(L, 1)));
  return 1;
}

/* lightuserdata() -> a light userdata, which Lua 5.1 code has no way to make */
static int proc_lightuserdata(lua_State *L) {
  static char anchor;
  lua_pushlightuserdata(L, &anchor);
  return 1;
}

int luaopen_test_proc(lua_State *L);

__attribute__((visibility("default"))) int luaopen_test_proc(lua_State *L) {
  static const luaL_Reg funcs[] = {{"spawn", proc_spawn},
                                   {"kill", proc_kill},
                                   {"wait", proc_wait},
                                   {"sleep", proc_sleep},
                                   {"now", proc_now},
                                   {"wallclock", proc_wallclock},
                                   {"pid", proc_pid},
                                   {"umask", proc_umask},
                                   {"file_mode", proc_file_mode},
                                   {"listdir", proc_listdir},
                                   {"lightuserdata", proc_lightuserdata},
                                   {NULL, NULL}};
  luaL_newlibtable(L, funcs);
  luaL_setfuncs(L, funcs, 0);
  return 1;
}
