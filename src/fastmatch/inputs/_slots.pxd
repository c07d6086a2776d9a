# cython: language_level=3
# The slots of the model's frozen, slotted classes (Image, Layer, ImageCache, a pod
# request's parts), made, written and read through their member descriptors: what
# object.__new__ and object.__setattr__ do, without the attribute lookup and past a frozen
# class's __setattr__.  Shared by the readers' fast paths (_fastcatalog, _fastcaches,
# _fastpods), which build those objects ten thousand at a time.

cdef extern from *:
    """
    /* A new, empty instance of a type, with n items for a tuple subclass (else 0):
       what tuple.__new__ and object.__new__ allocate. */
    static PyObject *fastmatch_new_instance(PyObject *type, Py_ssize_t n) {
        PyTypeObject *t = (PyTypeObject *)type;
        return t->tp_alloc(t, n);
    }
    /* Set a slot through its member descriptor. */
    static int fastmatch_set_slot(PyObject *descr, PyObject *obj, PyObject *value) {
        return Py_TYPE(descr)->tp_descr_set(descr, obj, value);
    }
    /* A slot's value (a new reference) through its member descriptor. */
    static PyObject *fastmatch_get_slot(PyObject *descr, PyObject *obj) {
        return Py_TYPE(descr)->tp_descr_get(descr, obj, (PyObject *)Py_TYPE(obj));
    }
    """
    object new_instance "fastmatch_new_instance"(object type, Py_ssize_t n)
    int set_slot "fastmatch_set_slot"(object descr, object obj, object value) except -1
    object get_slot "fastmatch_get_slot"(object descr, object obj)
