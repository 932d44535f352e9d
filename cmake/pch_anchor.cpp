// Anchor translation unit: keeps a library non-empty while its folders are still filling.
namespace safekey { void pch_anchor() {} }
