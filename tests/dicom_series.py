"""Test helper: write a 3D NIfTI image as a DICOM MR series (one file per slice), with identifying header text."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

#: Identifying values planted in every DICOM file the helper writes; no brainsr output may carry them.
IDENTITY = {
    "PatientName": "Doe^Jane",
    "PatientID": "MRN123456",
    "PatientBirthDate": "19700101",
    "StudyDate": "20220314",
    "SeriesDate": "20220314",
    "AcquisitionDate": "20220314",
    "ContentDate": "20220314",
    "InstitutionName": "St Elsewhere Hospital",
    "ReferringPhysicianName": "Who^Doctor",
    "AccessionNumber": "ACC998877",
}


def write_series(img: nib.Nifti1Image, folder: Path, *, series_number: int = 3, description: str = "t1_tra") -> Path:
    """Slices along the image's third axis; int16 pixels with a rescale slope; geometry in DICOM's LPS frame."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    data = np.asarray(img.dataobj, dtype=np.float64)
    affine = img.affine
    lps = np.diag([-1.0, -1.0, 1.0])
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    along_i = lps @ affine[:3, 0] / zooms[0]  # DICOM row direction: column index (our i) increases
    along_j = lps @ affine[:3, 1] / zooms[1]  # DICOM column direction: row index (our j) increases
    slope = max(float(np.abs(data).max()), 1e-6) / 30000.0
    pixels = np.round(data / slope).astype(np.int16)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(data.shape[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID = MRImageStorage
        for key, value in IDENTITY.items():
            setattr(ds, key, value)
        ds.Modality, ds.Manufacturer = "MR", "brainsr test scanner"
        ds.MagneticFieldStrength, ds.RepetitionTime, ds.EchoTime = 1.5, 500.0, 15.0
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SeriesNumber, ds.InstanceNumber, ds.AcquisitionNumber = series_number, k + 1, 1
        ds.SeriesDescription = ds.ProtocolName = description
        ds.ImagePositionPatient = [float(v) for v in lps @ (affine @ [0.0, 0.0, k, 1.0])[:3]]
        ds.ImageOrientationPatient = [float(v) for v in (*along_i, *along_j)]
        ds.PixelSpacing = [float(zooms[1]), float(zooms[0])]
        ds.SliceThickness = ds.SpacingBetweenSlices = float(zooms[2])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = data.shape[1], data.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}", "0"
        ds.PixelData = np.ascontiguousarray(pixels[:, :, k].T).tobytes()
        ds.save_as(folder / f"IM{k + 1:04d}.dcm", enforce_file_format=True)
    return folder
