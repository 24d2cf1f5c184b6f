"""Constant-velocity Kalman filter on (centre x, centre y, width, height).

Noise scales with the box size (as in BoT-SORT), so near and far people behave alike.
"""

from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter

CHI2_99_2DOF = 9.2103  # gate for the squared Mahalanobis distance of the box centre


def xyxy_to_xywh(b: np.ndarray) -> np.ndarray:
    return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]])


def xywh_to_xyxy(z: np.ndarray) -> np.ndarray:
    return np.array([z[0] - z[2] / 2, z[1] - z[3] / 2, z[0] + z[2] / 2, z[1] + z[3] / 2])


class BoxKalman:
    std_pos, std_vel = 1 / 20, 1 / 160

    def __init__(self, box_xyxy: np.ndarray):
        kf = KalmanFilter(dim_x=8, dim_z=4)
        kf.F = np.eye(8)
        kf.F[:4, 4:] = np.eye(4)
        kf.H = np.eye(4, 8)
        z = xyxy_to_xywh(box_xyxy)
        kf.x = np.r_[z, np.zeros(4)].reshape(8, 1)
        s = np.r_[2 * self.std_pos * z[[2, 3, 2, 3]], 10 * self.std_vel * z[[2, 3, 2, 3]]]
        kf.P = np.diag(s ** 2)
        self.kf = kf

    def _scale(self) -> np.ndarray:
        """Noise scale per coordinate. The height, not the width, scales the centre: a
        pedestrian box is narrow, and width-scaled noise made the motion gate a few pixels
        wide on small, far people."""
        w, h = max(self.kf.x[2, 0], 1.0), max(self.kf.x[3, 0], 1.0)
        return np.array([h, h, w, h])

    def predict(self) -> None:
        s = self._scale()
        self.kf.Q = np.diag(np.r_[self.std_pos * s, self.std_vel * s] ** 2)
        self.kf.predict()
        self.kf.x[2:4] = np.maximum(self.kf.x[2:4], 1.0)

    def update(self, box_xyxy: np.ndarray) -> None:
        self.kf.R = np.diag((self.std_pos * self._scale()) ** 2)
        self.kf.update(xyxy_to_xywh(box_xyxy).reshape(4, 1))

    def stop(self, keep_velocity: bool = True) -> None:
        """For a lost track: freeze the box size (an occluded person's box shrinks, and
        extrapolating that would shrink it to nothing); keep or forget the walking speed."""
        self.kf.x[6:] = 0
        if not keep_velocity:
            self.kf.x[4:6] = 0

    @property
    def box(self) -> np.ndarray:
        return xywh_to_xyxy(self.kf.x[:4, 0])

    def mahalanobis2(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distances of measured box centres to the predicted one.

        Only the centre counts: under partial occlusion a detector's box changes size far
        more than a person moves, and gating on size split tracks on our benchmark clips."""
        if len(boxes_xyxy) == 0:
            return np.zeros(0)
        self.kf.R = np.diag((self.std_pos * self._scale()) ** 2)
        s = (self.kf.H @ self.kf.P @ self.kf.H.T + self.kf.R)[:2, :2]
        b = np.asarray(boxes_xyxy, float)
        d = np.c_[(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2] - self.kf.x[:2, 0]
        return np.einsum("ni,ij,nj->n", d, np.linalg.inv(s), d)
