using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Defenses;

/// <summary>
/// Data augmentation the trainer applies to every training batch on its device, before the objective (so an
/// adversarial objective attacks the augmented images): a random crop — pad by <see cref="CropPadding"/> pixels on
/// every side with the bounds' lower value (0 = black for [0, 1]) and cut a random H×W window — and a horizontal
/// flip with probability ½, independently per image. Offsets and flips are drawn from the trainer's augmentation
/// generator (seeded by the run's seed and checkpointed, so runs repeat and resume exactly), a few bytes per batch;
/// the pixels never leave the device.
/// </summary>
public sealed record Augmentation
{
    public static readonly IReadOnlyList<string> Names = ["crop", "flip"];
    public const int DefaultCropPadding = 2;

    public bool Crop { get; init; }
    /// <summary>Pixels added on every side before the random crop (2–4 is usual: 2 for 28×28, 4 for 32×32).</summary>
    public int CropPadding { get; init; } = DefaultCropPadding;
    public bool Flip { get; init; }

    public static Augmentation None { get; } = new();
    public bool IsNone => !Crop && !Flip;

    /// <summary>"crop,flip", "crop", "flip", "none" or "" (none).</summary>
    public static Augmentation Parse(string? text, int cropPadding = DefaultCropPadding)
    {
        var result = new Augmentation { CropPadding = cropPadding };
        foreach (var part in (text ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            result = part.ToLowerInvariant() switch
            {
                "crop" => result with { Crop = true },
                "flip" => result with { Flip = true },
                "none" => result,
                _ => throw new ParameterException(nameof(Augmentation), $"unknown augmentation '{part}' (valid: {string.Join(", ", Names)}, none)"),
            };
        return result.Validate();
    }

    public Augmentation Validate()
    {
        if (CropPadding < 1 || CropPadding > 16) throw new ParameterException(nameof(CropPadding), $"must be in 1..16, got {CropPadding}");
        return this;
    }

    /// <summary>Checks that the images are [N, C, H, W] and larger than the padding.</summary>
    public void CheckShape(int[] sampleShape)
    {
        if (IsNone) return;
        if (sampleShape.Length != 3)
            throw new ParameterException(nameof(Augmentation), $"crop and flip need C,H,W images, got [{string.Join(",", sampleShape)}]");
        if (Crop && (sampleShape[1] <= CropPadding || sampleShape[2] <= CropPadding))
            throw new ParameterException(nameof(CropPadding), $"{CropPadding} is not smaller than the {sampleShape[1]}×{sampleShape[2]} images");
    }

    /// <summary>"crop(pad 2)+flip", "none": the provenance text.</summary>
    public override string ToString()
    {
        if (IsNone) return "none";
        var parts = new List<string>();
        if (Crop) parts.Add($"crop(pad {CropPadding})");
        if (Flip) parts.Add("flip");
        return string.Join("+", parts);
    }

    /// <summary>The augmented batch (a new tensor in the caller's dispose scope; <paramref name="batch"/> is untouched).</summary>
    public Tensor Apply(Tensor batch, Generator generator, Bounds bounds)
    {
        if (IsNone) return batch;
        if (batch.dim() != 4) throw new ArgumentException($"augmentation needs [N, C, H, W] batches, got [{string.Join(",", batch.shape)}]");
        long n = batch.shape[0], c = batch.shape[1], h = batch.shape[2], w = batch.shape[3];
        var x = batch;
        if (Crop)
        {
            int p = CropPadding;
            var padded = nn.functional.pad(x, [p, p, p, p], PaddingModes.Constant, bounds.Lower);
            // Per-image offsets in [0, 2p]; row/column indices of each image's window, gathered without a host loop.
            var offsets = randint(0, 2 * p + 1, [n, 2], dtype: ScalarType.Int64, generator: generator).to(x.device);
            var rows = offsets.narrow(1, 0, 1) + arange(Keep(h), dtype: ScalarType.Int64, device: x.device).unsqueeze(0);
            var cols = offsets.narrow(1, 1, 1) + arange(Keep(w), dtype: ScalarType.Int64, device: x.device).unsqueeze(0);
            var byRows = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * p));
            x = byRows.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w));
        }
        if (Flip)
        {
            var flip = rand([n], generator: generator).lt(Keep(0.5)).to(x.device).view(n, 1, 1, 1);
            x = where(flip, x.flip(3), x);
        }
        return x.contiguous();
    }
}
