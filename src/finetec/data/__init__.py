from .sample import SampleError, SkeletonSample

__all__ = ["SkeletonSample", "SampleError"]
