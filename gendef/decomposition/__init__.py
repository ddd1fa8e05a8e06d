"""Decompose a real clip into a canonical image and a per-frame deformation field.

The paper only edits generated videos; users want to edit their own clips. This
package fits the same representation (``CanonicalVideo``) to any short clip so
every editor works on it unchanged. Stages, one module each:

1. ``motion``: DIS optical flow between neighbouring frames, chained to the
   middle frame, gives every frame's map into the reference frame; a robust
   (RANSAC) per-frame homography plus a residual summarise it. The residual
   starts from the flow blurred where the image has no texture.
2. ``canvas``: the canonical image lives on a canvas larger than the frames (a
   margin plus everything the motion reveals), at ``canvas_scale`` canonical
   pixels per frame pixel. It starts in closed form: the frames splatted back
   through the grid (the adjoint of bilinear sampling), normalised.
3. ``field`` + ``fit``: the residual lives on control lattices every 4, 16 and
   64 pixels; a short coarse-to-fine Adam optimisation (half, then full
   resolution) of (canonical, lattices) against the frames, with the
   ``losses``: Charbonnier photometric loss, curvature prior on the canonical,
   smoothness of the finest lattice and the paper's L_reg (eq. 4).
4. ``pipeline``: input checks, working size, ``layer_choice.fit_working_size`` (the
   stage boundary: working-size frames -> CanonicalVideo; one canvas, N layers, or ``auto``:
   a cheap trial of layers against one canvas decides), metadata.
5. whole clips (``clip.decompose_clip``): ``cuts`` finds hard cuts from cheap frame
   statistics, ``segmenting`` splits the clip into overlapping spans where one canvas stops
   explaining it (cut, drift, changed content, length); each span is decomposed as above and
   the spans are chained in a ``SegmentedVideo``. Frames stream from the file, one span at a time.
   Opt-in, ``refine`` then splits and refits the spans whose worst frame the fit explains
   poorly, within a budget of refitted frames (``decompose_clip(..., refinement=Refinement())``).

The grid saved is the working-resolution frame size, in canonical pixels, so
``cv2.remap(canonical, grid[t, ..., 0], grid[t, ..., 1], INTER_LINEAR)`` renders
frame t.
"""
from .inputs import resize_frames, working_size
from .pipeline import DEFAULT_STEPS, decompose, decompose_file
from .clip import decompose_clip
from .quality import psnr, stipple_index

__all__ = ["DEFAULT_STEPS", "decompose", "decompose_clip", "decompose_file", "psnr", "resize_frames", "stipple_index", "working_size"]
