"""MATLAB files of the COFW and AFLW releases: v5 files through scipy, v7.3 (HDF5) through h5py."""
import numpy as np

from pipnet_jax.crops import AnnotationError


def load_mat(path):
    """MATLAB variables in MATLAB's own orientation: v5 files via scipy, v7.3 (HDF5) via h5py."""
    import scipy.io  # lazy: only .mat files need scipy (and h5py, below), not every parser
    try:
        return scipy.io.loadmat(path)
    except (NotImplementedError, ValueError) as e:  # NotImplementedError: a v7.3 file
        error = e
    try:
        import h5py  # lazy and optional: only MATLAB v7.3 files need it
    except ImportError:
        raise ImportError(f'{path}: not a MATLAB v5 file ({error}); MATLAB v7.3 (HDF5) files '
                          f'need h5py') from None
    if not h5py.is_hdf5(path):
        raise AnnotationError(f'{path}: not a MATLAB file ({error})')
    with h5py.File(path, 'r') as f:
        return {k: _h5_value(f, f[k]) for k in f
                if not k.startswith('#') and isinstance(f[k], h5py.Dataset)}


def _h5_value(f, ds):
    """One MATLAB v7.3 variable: HDF5 stores MATLAB arrays transposed (column-major), cell
    arrays as object references to datasets under '#refs#', char arrays as uint16 codes."""
    if ds.attrs.get('MATLAB_empty', 0):
        return np.zeros((0, 0))
    data = ds[()]
    if data.dtype == object:
        out = np.empty(data.shape, object)
        for idx in np.ndindex(data.shape):
            out[idx] = _h5_value(f, f[data[idx]])
        return out.T
    if ds.attrs.get('MATLAB_class') in (b'char', 'char'):
        return ''.join(map(chr, data.T.ravel()))
    return data.T


def mat_str(x):
    """A MATLAB string from a cell entry as scipy (nested arrays) or h5py (str) returns it."""
    while isinstance(x, np.ndarray):
        x = x.reshape(-1)[0] if x.size else ''
    return str(x)
