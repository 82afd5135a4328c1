"""`c360 doctor` checks of the recommenders: implicit on the CPU (a real fit) and on the GPU (why it is off)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def doctor_checks() -> list:
    """implicit CPU (required) and implicit GPU (optional, with the exact reason when off)."""
    from c360.doctor import Check, failed

    try:  # first: the GPU probe loads the CUDA libraries before anything imports implicit (else a false warning)
        from c360.recsys.gpu import gpu_status

        status = gpu_status()
        gpu = Check("implicit GPU", status.available, status.reason, required=False, facts=dict(status.detail))
    except Exception as exc:  # noqa: BLE001
        gpu = failed("implicit GPU", exc, required=False)
    checks = []
    try:
        import implicit
        from implicit.cpu.als import AlternatingLeastSquares

        model = AlternatingLeastSquares(factors=4, iterations=2, random_state=0)
        model.fit(sp.random(20, 10, density=0.3, format="csr", dtype=np.float32, random_state=0), show_progress=False)
        checks.append(Check("implicit CPU", True, f"implicit {implicit.__version__}: ALS fit on a tiny matrix",
                            facts={"version": implicit.__version__}))
    except Exception as exc:  # noqa: BLE001 - the reason is the report
        checks.append(failed("implicit CPU", exc))
    return [*checks, gpu]
