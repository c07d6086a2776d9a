# cython: language_level=3
"""Plain pods and workloads (SPEC §8) into runs of requests, read in C.

A plain object is what the API server and ``kubectl get -o json`` give: a dict of
kind ``Pod`` or a workload kind :mod:`fastmatch.inputs.pods` reads, whose metadata,
spec and pod template are dicts, whose name and namespace are strings, whose
template's annotations and node selector are dicts of strings (or absent), whose
containers are lists of dicts each with a string ``image``, and whose ``replicas``
(if any) is an int from 0 to the most the careful reader takes.

:meth:`PlainWorkloads.runs` reads such objects straight into the runs
:class:`~fastmatch.inputs.pods.PodRequests` keeps, making what the careful reader
makes (its ``_Shared`` and request types, its policy objects, the image reader's
images); it hands any other object, and any object whose reading raises, to the
careful reader, which reads it from the start and words the error.  Nothing here
raises on bad input: refusing an object is how it says "not plain".

``json.loads`` makes one str per key name and document: a field is looked up with the
document's own key object (learned from the first object of each document), which a
dict finds by identity, without comparing text.
"""

cimport cython
from cpython.dict cimport PyDict_Copy, PyDict_Next
from cpython.list cimport PyList_AsTuple
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_FromVoidPtr
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM

from fastmatch.inputs._slots cimport get_slot, new_instance, set_slot

from fastmatch.platforms import normalize_arch, normalize_os
from fastmatch.policy import ANNOTATIONS

__all__ = ["PlainWorkloads"]

cdef extern from *:
    PyObject *PyDict_GetItemWithError(object d, object key) except? NULL


cdef object NOT_PLAIN = object()  # what a reading returns for the careful reader
cdef tuple NO_VALUES = (None,) * len(ANNOTATIONS)  # no ECI annotation set
cdef dict NO_FIELDS = {}  # absent metadata; never written

# The keys read, by number: the ECI annotations (0 to len(ANNOTATIONS) - 1), then these.
cdef tuple FIELDS = ANNOTATIONS + (
    "kind", "metadata", "name", "generateName", "namespace", "spec", "jobTemplate",
    "template", "replicas", "annotations", "nodeSelector", "initContainers", "containers",
    "image", "kubernetes.io/arch", "beta.kubernetes.io/arch", "kubernetes.io/os",
    "beta.kubernetes.io/os")
cdef Py_ssize_t N_ANNOTATIONS = len(ANNOTATIONS)
cdef enum:
    K_KIND = 7  # len(ANNOTATIONS): checked when the module loads
    K_METADATA
    K_NAME
    K_GENERATE_NAME
    K_NAMESPACE
    K_SPEC
    K_JOB_TEMPLATE
    K_TEMPLATE
    K_REPLICAS
    K_ANNOTATIONS
    K_NODE_SELECTOR
    K_INIT_CONTAINERS  # then K_CONTAINERS: the groups read (not ephemeralContainers)
    K_CONTAINERS
    K_IMAGE
    K_ARCH
    K_BETA_ARCH
    K_OS
    K_BETA_OS
assert FIELDS[K_KIND] == "kind" and FIELDS[K_BETA_OS] == "beta.kubernetes.io/os"
cdef dict FIELD_NUMBERS = {key: number for number, key in enumerate(FIELDS)}

# How each kind read is read.
cdef enum:
    POD
    REPLICATED  # spec.template, spec.replicas pods
    SINGLE  # spec.template, one pod
    CRON_JOB  # spec.jobTemplate.spec.template, one pod
    POD_TEMPLATE  # template, one pod


cdef inline object get(dict d, object key):
    """``d.get(key)``."""
    cdef PyObject *found = PyDict_GetItemWithError(d, key)
    return None if found == NULL else <object>found


cdef int learn(list keys, object value, int depth) except -1:
    """Take the key objects of the fields read from ``value`` (an object's dicts and
    lists, ``depth`` levels down) in place of those in ``keys``."""
    cdef Py_ssize_t pos = 0
    cdef PyObject *key
    cdef PyObject *item
    cdef PyObject *number
    if depth == 0:
        return 0
    if type(value) is list:
        for element in <list>value:
            learn(keys, element, depth - 1)
    elif type(value) is dict:
        while PyDict_Next(value, &pos, &key, &item):
            if type(<object>key) is str:
                number = PyDict_GetItemWithError(FIELD_NUMBERS, <object>key)
                if number != NULL:
                    keys[<Py_ssize_t><object>number] = <object>key
            learn(keys, <object>item, depth - 1)
    return 0


cdef inline bint has_key(dict d, object key) noexcept:
    """Whether ``d`` holds this very key object (not an equal one)."""
    cdef Py_ssize_t pos = 0
    cdef PyObject *found
    cdef PyObject *value
    while PyDict_Next(d, &pos, &found, &value):
        if found == <PyObject *>key:
            return True
    return False


cdef inline bint all_strings(dict d) noexcept:
    """Whether every value of ``d`` is a str (what the careful reader passes as it is)."""
    cdef Py_ssize_t pos = 0
    cdef PyObject *key
    cdef PyObject *value
    while PyDict_Next(d, &pos, &key, &value):
        if type(<object>value) is not str:
            return False
    return True


cdef inline object namespace_of(dict meta, list keys):
    """``metadata.namespace``, ``default`` when unset; ``None`` when not plain."""
    cdef object ns = get(meta, keys[K_NAMESPACE])
    if ns is None:
        return "default"
    if type(ns) is not str:
        return None
    return ns if ns else "default"


@cython.final
@cython.auto_pickle(False)  # used where it is made
cdef class _Reading:
    """One read's state: the image reader's ``image`` and what it gave, by reference
    (with the platform when one is asked); the policies given, by annotation values
    (for pods that ask no platform), and that of a pod that asks nothing; the key
    objects of the fields, by number."""

    cdef object image
    cdef dict images
    cdef dict policies
    cdef object plain_policy
    cdef list keys

    def __init__(self, image) -> None:
        self.image = image
        self.images = {}
        self.policies = {}
        self.plain_policy = None
        self.keys = list(FIELDS)


@cython.final
@cython.auto_pickle(False)  # made once, by its module
cdef class PlainWorkloads:
    """The careful reader's types and helpers, for reading plain objects as it does.

    ``shared``: the type of what a workload's replicas share (a tuple subclass, filled
    by position); ``request``: the request type, whose ``name`` and ``_shared`` slots
    ``fields`` (its base) declares; ``policy``: the policy of ``(annotation values,
    arch, os)``; ``replicated``, ``single``: the kinds that count replicas and the kinds
    that make one pod; ``max_replicas``: the most replicas it takes.
    """

    cdef object shared, request, policy, name_slot, shared_slot
    cdef dict kinds  # kind -> how it is read (POD, REPLICATED...)
    cdef long long max_replicas

    def __init__(self, shared, request, fields, policy, frozenset replicated,
                 frozenset single, long long max_replicas) -> None:
        self.shared = shared
        self.request = request
        self.name_slot = fields.__dict__["name"]
        self.shared_slot = fields.__dict__["_shared"]
        self.policy = policy
        self.kinds = {"Pod": POD}
        for kind in replicated:
            self.kinds[kind] = REPLICATED
        for kind in single:  # two of them keep their pod template elsewhere
            self.kinds[kind] = (CRON_JOB if kind == "CronJob" else
                                POD_TEMPLATE if kind == "PodTemplate" else SINGLE)
        self.max_replicas = max_replicas

    def runs(self, found, image, careful):
        """The runs of the objects of ``found`` (each ``Located``), in order, and the
        index one past each run's last pod: ``(runs, ends)``.  ``image`` is the image
        reader's ``image``; ``careful(located)`` reads an object that is not plain (a
        run, or ``None``: no pods), raising the user's error."""
        cdef list runs = [], ends = []
        cdef Py_ssize_t total = 0, count = 0
        cdef _Reading reading = _Reading(image)
        cdef object run
        for located in found:
            try:
                run = self.read(located.obj, reading, &count)
            except Exception:  # a reference or annotation the careful reader words
                run = NOT_PLAIN
            if run is NOT_PLAIN:
                run = careful(located)
                count = 0 if run is None else (<tuple?>run)[1]
            if run is not None and count > 0:
                total += count
                runs.append(run)
                ends.append(total)
        return runs, ends

    def lists(self, list runs):
        """What ``workload_lists`` gives for these runs: each run's images (one list per
        tuple of image objects), policy, number of pods and first pod's name."""
        cdef list pods = [], policies = [], counts = [], names = []
        cdef dict lists = {}
        cdef tuple run, images, shared
        cdef Py_ssize_t i, n
        cdef object key, first
        cdef PyObject *found
        for run in runs:
            first = run[0]
            shared = <tuple>get_slot(self.shared_slot, first)
            images = <tuple>shared[0]
            n = len(images)
            # The objects live in ``images``: their addresses are not reused.
            if n == 1:
                key = PyLong_FromVoidPtr(<void *>images[0])
            else:
                key = PyTuple_New(n)
                for i in range(n):
                    item = PyLong_FromVoidPtr(<void *>images[i])
                    Py_INCREF(item)
                    PyTuple_SET_ITEM(key, i, item)
            found = PyDict_GetItemWithError(lists, key)
            if found == NULL:
                same = list(images)
                lists[key] = same
            else:
                same = <object>found
            pods.append(same)
            policies.append(shared[6])
            counts.append(run[1])
            names.append(get_slot(self.name_slot, first))
        return pods, policies, counts, names

    cdef object read(self, object obj, _Reading reading, Py_ssize_t *count):
        """The run of ``obj`` (its count in ``count``), ``None`` when it makes no pod, or
        ``NOT_PLAIN``."""
        cdef dict d, meta, spec
        cdef list keys = reading.keys
        cdef object kind, name, ns, value, template, first
        cdef PyObject *code
        cdef long long replicas = 1
        cdef int overflow = 0, how
        if type(obj) is not dict:
            return NOT_PLAIN
        d = <dict>obj
        if not has_key(d, keys[K_KIND]):  # another document's keys (or no kind)
            learn(keys, d, 8)  # deep enough for a CronJob's containers' images
        kind = get(d, keys[K_KIND])
        if type(kind) is not str:
            return NOT_PLAIN
        code = PyDict_GetItemWithError(self.kinds, kind)
        if code == NULL:
            return None  # not a pod or workload: skipped
        how = <int><object>code
        value = get(d, keys[K_METADATA])
        if how == POD:
            if value is None:
                meta = NO_FIELDS
            elif type(value) is dict:
                meta = <dict>value
            else:
                return NOT_PLAIN
            name = get(meta, keys[K_NAME])
            if type(name) is str and name:
                pass
            elif name is None or (type(name) is str):
                name = get(meta, keys[K_GENERATE_NAME])
                if name is None:
                    name = ""
                elif type(name) is not str:
                    return NOT_PLAIN
            else:
                return NOT_PLAIN
            ns = namespace_of(meta, keys)
            if ns is None:
                return NOT_PLAIN
            first = self.pod(d, reading, name, ns, "")
            if first is NOT_PLAIN:
                return NOT_PLAIN
            count[0] = 1
            return (first, 1, None)
        if type(value) is not dict:
            return NOT_PLAIN
        meta = <dict>value
        name = get(meta, keys[K_NAME])
        if not (type(name) is str and name):
            if name is not None and type(name) is not str:
                return NOT_PLAIN
            name = get(meta, keys[K_GENERATE_NAME])
            if not (type(name) is str and name):
                return NOT_PLAIN
        ns = namespace_of(meta, keys)
        if ns is None:
            return NOT_PLAIN
        value = get(d, keys[K_SPEC])
        if type(value) is not dict:
            return NOT_PLAIN
        spec = <dict>value
        if how == CRON_JOB:
            value = get(spec, keys[K_JOB_TEMPLATE])
            if type(value) is not dict:
                return NOT_PLAIN
            value = get(<dict>value, keys[K_SPEC])
            if type(value) is not dict:
                return NOT_PLAIN
            spec = <dict>value
        template = get(d if how == POD_TEMPLATE else spec, keys[K_TEMPLATE])
        if type(template) is not dict:
            return NOT_PLAIN
        if how == REPLICATED:
            value = get(spec, keys[K_REPLICAS])
            if value is not None:
                if type(value) is not int:
                    return NOT_PLAIN
                replicas = PyLong_AsLongLongAndOverflow(value, &overflow)
                if overflow or not 0 <= replicas <= self.max_replicas:
                    return NOT_PLAIN
            if replicas == 0:
                return None
            first = self.pod(<dict>template, reading, f"{name}-0", ns, f"{kind} {name}")
        else:
            first = self.pod(<dict>template, reading, name, ns, f"{kind} {name}")
        if first is NOT_PLAIN:
            return NOT_PLAIN
        count[0] = <Py_ssize_t>replicas
        return (first, replicas, name if how == REPLICATED else None)

    cdef object pod(self, dict template, _Reading reading, object name, object namespace,
                    object workload):
        """The request of a pod or pod template, under this name and namespace, or
        ``NOT_PLAIN``."""
        cdef dict spec, selector, annotations
        cdef object value, arch = None, os = None, platform = None, ref, image, key
        cdef object policy, values, containers, container, shared, request, seen
        cdef PyObject *found
        cdef list images = [], keys = reading.keys
        cdef Py_ssize_t i
        cdef int group
        value = get(template, keys[K_METADATA])
        if value is None:
            annotations = None
        elif type(value) is dict:
            value = get(<dict>value, keys[K_ANNOTATIONS])
            if value is None:
                annotations = None
            elif type(value) is dict and all_strings(<dict>value):
                annotations = <dict>value
            else:
                return NOT_PLAIN
        else:
            return NOT_PLAIN
        value = get(template, keys[K_SPEC])
        if type(value) is not dict:
            return NOT_PLAIN
        spec = <dict>value
        value = get(spec, keys[K_NODE_SELECTOR])
        if value is not None:
            if type(value) is not dict or not all_strings(<dict>value):
                return NOT_PLAIN
            selector = <dict>value
            if selector:
                arch = get(selector, keys[K_ARCH])
                if arch is None:
                    arch = get(selector, keys[K_BETA_ARCH])
                os = get(selector, keys[K_OS])
                if os is None:
                    os = get(selector, keys[K_BETA_OS])
                arch, os = normalize_arch(arch), normalize_os(os)
                if arch is not None:
                    platform = f"{os or 'linux'}/{arch}"
        for group in range(K_INIT_CONTAINERS, K_CONTAINERS + 1):
            containers = get(spec, keys[group])
            if containers is None:
                continue
            if type(containers) is not list:
                return NOT_PLAIN
            for container in <list>containers:
                if type(container) is not dict:
                    return NOT_PLAIN
                ref = get(<dict>container, keys[K_IMAGE])
                if type(ref) is not str:
                    return NOT_PLAIN
                key = ref if platform is None else (ref, platform)
                found = PyDict_GetItemWithError(reading.images, key)
                if found == NULL:
                    # The field is named only in an error, which the careful reader words.
                    image = reading.image(ref, "", platform)
                    reading.images[key] = image
                else:
                    image = <object>found
                for seen in images:  # the reader gives one object per reference
                    if seen is image:
                        break
                else:
                    images.append(image)
        if not images:
            return NOT_PLAIN
        if annotations is None or not annotations:
            values = NO_VALUES
        else:
            values = PyTuple_New(N_ANNOTATIONS)
            for i in range(N_ANNOTATIONS):
                value = get(annotations, keys[i])
                Py_INCREF(value)
                PyTuple_SET_ITEM(values, i, value)
        if values is NO_VALUES and arch is None and os is None:  # most pods: no hashing
            if reading.plain_policy is None:
                reading.plain_policy = self.policy(NO_VALUES, None, None)
            policy = reading.plain_policy
        elif arch is None and os is None:
            found = PyDict_GetItemWithError(reading.policies, values)
            if found == NULL:
                policy = self.policy(values, None, None)
                reading.policies[values] = policy
            else:
                policy = <object>found
        else:
            policy = self.policy(values, arch, os)
        shared = new_instance(self.shared, 8)
        for i, value in enumerate((PyList_AsTuple(images),
                                   {} if annotations is None else PyDict_Copy(annotations),
                                   namespace, None, arch, os, policy, workload)):
            Py_INCREF(value)
            PyTuple_SET_ITEM(shared, i, value)
        request = new_instance(self.request, 0)
        set_slot(self.name_slot, request, name)
        set_slot(self.shared_slot, request, shared)
        return request
