namespace Robustness.Data;

/// <summary>How an image-folder dataset is decoded: channels (1 or 3), a final height and width, and torchvision-style
/// preprocessing (shorter side resized to <see cref="Resize"/>, then the central <see cref="CenterCrop"/>²).</summary>
public sealed record ImageFolderOptions
{
    public int? Channels { get; init; }
    public int? Height { get; init; }
    public int? Width { get; init; }
    public int? Resize { get; init; }
    public int? CenterCrop { get; init; }
    /// <summary>Multi-label folders (labels.csv): accept rows with an empty label set (an image with none of the classes).</summary>
    public bool AllowEmptyLabels { get; init; }
}
