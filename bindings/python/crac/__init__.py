# SPDX-License-Identifier: MIT
"""crac - Coordinated Restore at Checkpoint for Python programs.

A ctypes binding of libcrac (see crac(3) and crac(7)):

    import crac

    @crac.before_checkpoint
    def close_db(ev):
        db.close()

    @crac.after_restore
    def reopen_db(ev):
        db.connect()

    crac.checkpoint(engine="image", image_dir="/var/lib/app/img")

Hooks get an Event (the fields of struct crac_event). A hook that raises
makes the checkpoint fail; every failure of the checkpoint's report is raised
at once as CheckpointError (no snapshot was taken) or RestoreError (the
process was restored or went on, but after_restore hooks failed), each
failure as a Failure exception in `.failures` (like the suppressed exceptions
of OpenJDK CRaC's CheckpointException).

Hooks run on the thread that checkpoints: the caller of checkpoint(), or a
thread of the library when the checkpoint was requested from outside
(`crac checkpoint PID` of a program started with `crac run`); ctypes takes
the GIL for them.

In every restored instance, the module-level generator of `random` is
reseeded from os.urandom (random.SystemRandom and `secrets` need nothing)
unless CRAC_PY_KEEP_SEED=1 (in the environment, or given with
`crac restore --env`), or keep_seed(True) was called. Variables given with
`crac restore --env K=V` are also set in os.environ. The reseed is an
after_restore hook (it needs the GIL), and the restored threads run
first: a thread with input already waiting may draw from `random` before
it, the same numbers in every instance (use `secrets` there). An unmodified program
gets this with `crac run -- python3 -m crac SCRIPT [ARGS...]` (also -m
MODULE, -c CODE): the binding is loaded, then the program runs as __main__.

The library: $CRAC_LIBRARY (a path), else the libcrac already loaded in this
process (under `crac run` it is preloaded), else the one installed with this
module, else libcrac.so.0 from the dynamic linker's search path.
"""

import ctypes
import enum
import errno as _errno
import os
import sys
import threading
import uuid

__all__ = [
    "before_checkpoint", "after_restore", "register", "unregister", "Resource",
    "checkpoint", "check", "Event", "Kind", "Outcome", "Phase", "Failure",
    "Error", "CheckpointError", "RestoreError", "keep_seed", "instance_id",
    "version", "engines", "library_path",
]

# ---- finding and describing the library ----------------------------------

def _loaded_libcrac():
    """Path of a libcrac.so* already mapped into this process, or None."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6:
                    path = parts[5].strip()
                    if os.path.basename(path).startswith("libcrac.so"):
                        return path
    except OSError:
        pass
    return None


def _installed_libcrac():
    try:
        from . import _install  # written by `cmake --install`
    except ImportError:
        return None
    path = os.path.join(_install.LIBDIR, "libcrac.so.0")
    return path if os.path.exists(path) else None


def _load():
    tried = []
    for how, path in (("$CRAC_LIBRARY", os.environ.get("CRAC_LIBRARY")),
                      ("loaded in this process", _loaded_libcrac()),
                      ("installed with the binding", _installed_libcrac()),
                      ("the linker's search path", "libcrac.so.0")):
        if not path:
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s): %s" % (path, how, e))
    raise ImportError("crac: cannot load libcrac: " + "; ".join(tried))


_lib, library_path = _load()


class _Event(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("kind", ctypes.c_int),
        ("outcome", ctypes.c_int),
        ("engine", ctypes.c_char_p),
        ("generation", ctypes.c_uint64),
        ("instance_id", ctypes.c_uint8 * 16),
        ("checkpoint_realtime", ctypes.c_int64),
        ("checkpoint_monotonic", ctypes.c_int64),
        ("restore_realtime", ctypes.c_int64),
        ("restore_monotonic", ctypes.c_int64),
        ("deadline_monotonic", ctypes.c_int64),
        ("argc", ctypes.c_int),
        ("argv", ctypes.POINTER(ctypes.c_char_p)),
        ("envp", ctypes.POINTER(ctypes.c_char_p)),
        ("realtime_jump", ctypes.c_int64),
        ("monotonic_offset", ctypes.c_int64),
        ("boot_changed", ctypes.c_int),
        ("unannounced", ctypes.c_int),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_Event), ctypes.c_void_p)


class _ResourceDef(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("before_checkpoint", _CALLBACK),
        ("after_restore", _CALLBACK),
        ("arg", ctypes.c_void_p),
        ("priority", ctypes.c_int),
        ("size", ctypes.c_size_t),
    ]


class _Options(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("engine", ctypes.c_char_p),
        ("image_dir", ctypes.c_char_p),
        ("deadline_ms", ctypes.c_int64),
        ("restore_deadline_ms", ctypes.c_int64),
        ("flags", ctypes.c_uint),
    ]


class _Failure(ctypes.Structure):
    _fields_ = [
        ("phase", ctypes.c_int),
        ("resource", ctypes.c_char_p),
        ("code", ctypes.c_int),
        ("message", ctypes.c_char_p),
    ]


def _proto(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = argtypes
    return f


_vp = ctypes.c_void_p
_crac_version = _proto("crac_version", ctypes.c_char_p)
_crac_engines = _proto("crac_engines", ctypes.POINTER(ctypes.c_char_p))
_crac_register = _proto("crac_register", ctypes.c_int, _vp,
                        ctypes.POINTER(_ResourceDef), ctypes.POINTER(_vp))
_crac_unregister = _proto("crac_unregister", ctypes.c_int, _vp)
_crac_options_init = _proto("crac_options_init", None, ctypes.POINTER(_Options))
_crac_checkpoint_restore = _proto("crac_checkpoint_restore", ctypes.c_int,
                                  ctypes.POINTER(_Options), ctypes.POINTER(_vp))
_crac_check = _proto("crac_check", ctypes.c_int, ctypes.POINTER(_vp))
_crac_report_count = _proto("crac_report_count", ctypes.c_size_t, _vp)
_crac_report_get = _proto("crac_report_get", ctypes.POINTER(_Failure), _vp, ctypes.c_size_t)
_crac_report_status = _proto("crac_report_status", ctypes.c_int, _vp)
_crac_report_format = _proto("crac_report_format", ctypes.c_int, _vp, ctypes.POINTER(_vp))
_crac_report_free = _proto("crac_report_free", None, _vp)
_crac_instance_id = _proto("crac_instance_id", ctypes.c_int,
                           ctypes.POINTER(ctypes.c_uint8 * 16), ctypes.POINTER(ctypes.c_uint64))
# variadic: only the fixed arguments are declared; we always pass "%s", bytes
_crac_fail = _lib.crac_fail
_crac_fail.restype = ctypes.c_int
_libc = ctypes.CDLL(None)
_libc.free.argtypes = (_vp,)
_libc.free.restype = None
_libc.getenv.argtypes = (ctypes.c_char_p,)
_libc.getenv.restype = ctypes.c_char_p

# ---- constants --------------------------------------------------------------


class Kind(enum.IntEnum):
    BEFORE_CHECKPOINT = 1
    AFTER_RESTORE = 2


class Outcome(enum.IntEnum):
    CONTINUED = 1  # the snapshot was taken; this is the original going on
    RESTORED = 2   # a restored (or resumed, or simulated) instance
    ABORTED = 3    # no snapshot was taken


class Phase(enum.IntEnum):
    CHECKPOINT = 1  # a before_checkpoint hook or the orchestration
    CHECK = 2       # a safety check
    ENGINE = 3      # the engine
    RESTORE = 4     # an after_restore hook


PRIO_NORMAL = 0
PRIO_RUNTIME = 100
PRIO_SECURITY = 150
PRIO_CHECKS = 200

KEEP_RUNNING = 1
DRY_RUN = 2
FORCE_CHECKS = 4
INCREMENTAL = 8
COMPRESS = 16


def version():
    """The library's version, "MAJOR.MINOR.PATCH"."""
    return _crac_version().decode()


def engines():
    """Names of the engines built into the library."""
    p = _crac_engines()
    out = []
    i = 0
    while p[i]:
        out.append(p[i].decode())
        i += 1
    return out


def instance_id():
    """(uuid.UUID of this instance, generation): fresh after every restore."""
    buf = (ctypes.c_uint8 * 16)()
    gen = ctypes.c_uint64()
    _crac_instance_id(ctypes.byref(buf), ctypes.byref(gen))
    return uuid.UUID(bytes=bytes(buf)), gen.value

# ---- events -----------------------------------------------------------------


def _strings(vec, n=None):
    out = []
    if not vec:
        return out
    i = 0
    while (n is None or i < n) and vec[i] is not None:
        out.append(os.fsdecode(vec[i]))
        i += 1
    return out


def _enum(cls, v):
    """cls(v), or the int itself for a value a newer library added."""
    try:
        return cls(v)
    except ValueError:
        return v


class Event:
    """What a hook is told (struct crac_event, copied: it may be kept).

    kind (Kind), outcome (Outcome, after_restore only; else None), engine,
    generation, instance_id (uuid.UUID), checkpoint_realtime,
    checkpoint_monotonic, restore_realtime, restore_monotonic,
    deadline_monotonic (nanoseconds; 0 when not applicable), argv (the new
    arguments given at restore, a list without the program name), env (the
    new variables, a dict), realtime_jump, monotonic_offset (nanoseconds),
    boot_changed (bool), unannounced (bool: a restore noticed after the
    fact, with no before_checkpoint; the external engine).
    """

    __slots__ = ("kind", "outcome", "engine", "generation", "instance_id",
                 "checkpoint_realtime", "checkpoint_monotonic",
                 "restore_realtime", "restore_monotonic", "deadline_monotonic",
                 "argv", "env", "realtime_jump", "monotonic_offset", "boot_changed",
                 "unannounced")

    def __init__(self, ev):
        size = ev.size

        def has(field):
            # the library may be older than this binding: fields past its
            # struct's size read as absent
            d = getattr(_Event, field)
            return d.offset + d.size <= size

        def get(field, default=0):
            return getattr(ev, field) if has(field) else default

        self.kind = _enum(Kind, ev.kind)
        self.outcome = _enum(Outcome, ev.outcome) if ev.outcome else None
        self.engine = ev.engine.decode() if ev.engine else None
        self.generation = ev.generation
        self.instance_id = uuid.UUID(bytes=bytes(ev.instance_id))
        self.checkpoint_realtime = ev.checkpoint_realtime
        self.checkpoint_monotonic = ev.checkpoint_monotonic
        self.restore_realtime = ev.restore_realtime
        self.restore_monotonic = ev.restore_monotonic
        self.deadline_monotonic = ev.deadline_monotonic
        self.argv = _strings(ev.argv, ev.argc) if has("argv") else []
        env = _strings(ev.envp) if has("envp") else []
        self.env = dict(kv.split("=", 1) for kv in env if "=" in kv)
        self.realtime_jump = get("realtime_jump")
        self.monotonic_offset = get("monotonic_offset")
        self.boot_changed = bool(get("boot_changed"))
        self.unannounced = bool(get("unannounced"))

    def __repr__(self):
        return "crac.Event(%s)" % ", ".join(
            "%s=%r" % (k, getattr(self, k)) for k in self.__slots__)

# ---- failures -----------------------------------------------------------------


class Error(Exception):
    """A checkpoint's report: every failure, as Failure exceptions.

    failures: list of Failure; outcome: Outcome, or None when the call
    failed with an errno before any outcome; code: the negative errno of
    checkpoint() in that case (else 0); report: the text crac_report_print
    writes.
    """

    def __init__(self, report, failures, outcome=None, code=0):
        super().__init__(report)
        self.report = report
        self.failures = failures
        self.outcome = outcome
        self.code = code

    @property
    def suppressed(self):
        """The failures, by their name in OpenJDK CRaC."""
        return self.failures


class CheckpointError(Error):
    """No snapshot was taken (outcome ABORTED, or an errno)."""


class RestoreError(Error):
    """The snapshot was taken (this is a restored instance, or the original
    going on) but after_restore hooks failed."""


class Failure(Exception):
    """One failure of a report: phase (Phase), resource (its path, "crac"
    for the library), code (negative errno), message; `exception` (also the
    __cause__) is what a Python hook raised, when it was one."""

    def __init__(self, phase, resource, code, message, exception=None):
        super().__init__("%s %s: %s (%s): %s" % (
            _PHASE_WORDS.get(phase, "?"), resource, os.strerror(-code),
            _errno.errorcode.get(-code, str(code)), message))
        self.phase = phase
        self.resource = resource
        self.code = code
        self.message = message
        self.exception = exception
        self.__cause__ = exception


_PHASE_WORDS = {Phase.CHECKPOINT: "before_checkpoint", Phase.CHECK: "check",
                Phase.ENGINE: "engine", Phase.RESTORE: "after_restore"}

# What Python hooks raised during the current checkpoint() call of this thread:
# (phase, code, message, exception), matched with the report's failures.
_raised = threading.local()


def _collect(rep, rc, pending):
    """An Error for report `rep` (freed here) and return value rc, or None;
    `pending` lists what Python hooks raised during the call."""
    failures = []
    text = ""
    if rep:
        for i in range(_crac_report_count(rep)):
            f = _crac_report_get(rep, i).contents
            phase = _enum(Phase, f.phase)
            resource = os.fsdecode(f.resource or b"")
            message = os.fsdecode(f.message or b"")
            exc = None
            for j, (p, c, m, e) in enumerate(pending):
                if p == phase and c == f.code and m == message:
                    exc = e
                    del pending[j]
                    break
            failures.append(Failure(phase, resource, f.code, message, exc))
        out = _vp()
        if _crac_report_format(rep, ctypes.byref(out)) == 0 and out.value:
            text = ctypes.string_at(out.value).decode(errors="backslashreplace").rstrip("\n")
            _libc.free(out)
        _crac_report_free(rep)
    if rc < 0:
        if not text:
            text = "crac: checkpoint failed: %s (%s)" % (
                os.strerror(-rc), _errno.errorcode.get(-rc, str(rc)))
        return CheckpointError(text, failures, None, rc)
    if rc == Outcome.ABORTED:
        return CheckpointError(text, failures, Outcome.ABORTED)
    if failures:
        return RestoreError(text, failures, _enum(Outcome, rc))
    return None

# ---- resources ------------------------------------------------------------------


class _Registration:
    """Keeps the ctypes callbacks of one resource alive while it is
    registered (the library holds only their addresses)."""

    __slots__ = ("handle", "name", "before", "after", "owner")


_registered = {}       # handle address -> _Registration
_by_owner = {}         # id(function or Resource) -> handle address
_reg_lock = threading.Lock()


def _trampoline(fn, phase):
    def call(evp, arg):
        try:
            fn(Event(evp.contents))
            return 0
        except BaseException as e:  # a hook's failure never unwinds into C
            code = -e.errno if isinstance(e, OSError) and e.errno else -_errno.EIO
            message = "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__
            message = message.replace("\n", " ")
            items = getattr(_raised, "items", None)
            if items is not None:
                items.append((phase, code, message, e))
            _crac_fail(code, b"%s", os.fsencode(message))
            return code
    return _CALLBACK(call)


def _register(owner, name, before, after, priority):
    reg = _Registration()
    reg.name = name
    reg.owner = owner
    reg.before = _trampoline(before, Phase.CHECKPOINT) if before else _CALLBACK()
    reg.after = _trampoline(after, Phase.RESTORE) if after else _CALLBACK()
    d = _ResourceDef(os.fsencode(name), reg.before, reg.after, None, priority)
    handle = _vp()
    rc = _crac_register(None, ctypes.byref(d), ctypes.byref(handle))
    if rc < 0:
        raise OSError(-rc, "crac_register %s: %s" % (name, os.strerror(-rc)))
    reg.handle = handle.value
    with _reg_lock:
        _registered[reg.handle] = reg
        _by_owner.setdefault(id(owner), []).append(reg.handle)
    return reg.handle


def _name_of(fn):
    mod = getattr(fn, "__module__", None)
    qn = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    name = "%s.%s" % (mod, qn) if mod and mod != "__main__" else qn
    return name.replace("/", ".").replace("<", "").replace(">", "")


def _hook_decorator(kind, fn, name, priority):
    def deco(f):
        n = name or _name_of(f)
        if kind is Kind.BEFORE_CHECKPOINT:
            _register(f, n, f, None, priority)
        else:
            _register(f, n, None, f, priority)
        return f
    return deco(fn) if fn is not None else deco


def before_checkpoint(fn=None, *, name=None, priority=PRIO_NORMAL):
    """Decorator: fn(event) runs before every checkpoint (in increasing
    priority; among equal priorities, the last registered first). Use as
    @before_checkpoint or @before_checkpoint(name=..., priority=...)."""
    return _hook_decorator(Kind.BEFORE_CHECKPOINT, fn, name, priority)


def after_restore(fn=None, *, name=None, priority=PRIO_NORMAL):
    """Decorator: fn(event) runs after every checkpoint attempt that reached
    the before_checkpoint hooks (restored, went on, or aborted: see
    event.outcome), in the reverse order of the before_checkpoint hooks:
    among equal priorities, the first registered first."""
    return _hook_decorator(Kind.AFTER_RESTORE, fn, name, priority)


class Resource:
    """Base class for an object with before_checkpoint(event) and
    after_restore(event) methods, registered with register(obj)."""

    def before_checkpoint(self, event):
        pass

    def after_restore(self, event):
        pass


def register(obj, name=None, priority=PRIO_NORMAL):
    """Registers an object with before_checkpoint(event) and/or
    after_restore(event) methods as one resource (jdk.crac's
    Context.register). Returns obj."""
    b = getattr(obj, "before_checkpoint", None)
    a = getattr(obj, "after_restore", None)
    if not callable(b) and not callable(a):
        raise TypeError("crac.register: %r has neither before_checkpoint nor after_restore" % (obj,))
    _register(obj, name or type(obj).__qualname__, b if callable(b) else None,
              a if callable(a) else None, priority)
    return obj


def unregister(owner):
    """Unregisters what register(owner) or a decorator on owner registered.
    Returns the number of resources unregistered."""
    with _reg_lock:
        handles = _by_owner.pop(id(owner), [])
    for h in handles:
        _crac_unregister(h)     # no callback of it starts after this
        with _reg_lock:
            _registered.pop(h, None)
    return len(handles)

# ---- checkpoint ---------------------------------------------------------------


def checkpoint(engine=None, image_dir=None, *, keep_running=False, dry_run=False,
               force_checks=False, incremental=False, compress=False, deadline_ms=0,
               restore_deadline_ms=0):
    """Checkpoints the process (crac_checkpoint_restore(3)).

    engine: None for $CRAC_ENGINE, else "sim"; image_dir: None for
    $CRAC_IMAGE_DIR. The flags of crac_checkpoint_restore: keep_running
    (CRAC_KEEP_RUNNING), dry_run (CRAC_DRY_RUN), force_checks
    (CRAC_FORCE_CHECKS), incremental (CRAC_INCREMENTAL: the image engine
    stores only the pages written since the image this process was restored
    from or last checkpointed into with keep_running) and compress
    (CRAC_COMPRESS: the image engine zstd-compresses the page data, level 1;
    $CRAC_IMAGE_COMPRESS=LEVEL chooses another level; CheckpointError with
    ENOTSUP from a build without zstd). Returns Outcome.RESTORED in a restored instance, or
    Outcome.CONTINUED (keep_running, dry_run, or an engine that does not
    stop the process). Without keep_running, a successful image snapshot
    ends the original process (exit status 0). Raises CheckpointError when
    no snapshot was taken, RestoreError when after_restore hooks failed.
    """
    o = _Options()
    _crac_options_init(ctypes.byref(o))
    keep = []  # the option strings live until the call returns
    if engine is not None:
        keep.append(os.fsencode(engine))
        o.engine = keep[-1]
    if image_dir is not None:
        keep.append(os.fsencode(os.fspath(image_dir)))
        o.image_dir = keep[-1]
    o.deadline_ms = deadline_ms
    o.restore_deadline_ms = restore_deadline_ms
    o.flags = ((KEEP_RUNNING if keep_running else 0) | (DRY_RUN if dry_run else 0) |
               (FORCE_CHECKS if force_checks else 0) | (INCREMENTAL if incremental else 0) |
               (COMPRESS if compress else 0))
    rep = _vp()
    # a hook may call checkpoint() itself (refused: EDEADLK): the outer
    # call's list of raised exceptions is kept aside meanwhile
    outer = getattr(_raised, "items", None)
    mine = _raised.items = []
    try:
        # CDLL releases the GIL for the call: hooks take it again (ctypes),
        # and other Python threads run meanwhile
        rc = _crac_checkpoint_restore(ctypes.byref(o), ctypes.byref(rep))
    finally:
        _raised.items = outer
    err = _collect(rep.value, rc, mine)
    if err is not None:
        raise err
    return _enum(Outcome, rc)


def check():
    """The safety checks now (crac_check(3)): a list of Failure, empty when
    an image engine would accept the process."""
    rep = _vp()
    rc = _crac_check(ctypes.byref(rep))
    if rc < 0:
        raise OSError(-rc, "crac_check: " + os.strerror(-rc))
    err = _collect(rep.value, Outcome.CONTINUED, [])
    return err.failures if err else []

# ---- the binding's own resource: Python's runtime state ---------------------------

_keep_seed = False


def keep_seed(keep=True):
    """keep_seed(True): restored instances keep the sequence of `random`'s
    module-level generator (as CRAC_PY_KEEP_SEED=1 does)."""
    global _keep_seed
    _keep_seed = bool(keep)


def _flush_std(ev):
    # Python's buffered output goes out before the snapshot, once: not again
    # from every restored instance, and not lost with the original.
    for s in (sys.stdout, sys.stderr):
        try:
            if s is not None:
                s.flush()
        except Exception:
            pass


def _python_restored(ev):
    if ev.outcome is not Outcome.RESTORED:
        return
    for k, v in ev.env.items():
        os.environ[k] = v
    # libc's environ has the new variables already; os.environ is a copy
    # taken at start-up
    keep = _libc.getenv(b"CRAC_PY_KEEP_SEED")
    if _keep_seed or keep == b"1":
        return
    rnd = sys.modules.get("random")
    if rnd is not None:
        rnd.seed()   # from os.urandom


_register(sys.modules[__name__], "python", _flush_std, _python_restored, PRIO_RUNTIME)


def _at_exit():
    # No hook may start in an interpreter that is going away (a checkpoint
    # requested from outside while Python exits).
    with _reg_lock:
        handles = list(_registered)
    for h in handles:
        _crac_unregister(h)
    with _reg_lock:
        _registered.clear()
        _by_owner.clear()


import atexit  # noqa: E402
atexit.register(_at_exit)
