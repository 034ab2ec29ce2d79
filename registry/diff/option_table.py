"""Options that change generated code: which language reads each, and whether this registry ships it."""

from __future__ import annotations

from dataclasses import dataclass

# The SDK targets this registry generates and publishes: the Python wheel (sdk/python)
# and the TypeScript package (sdk/typescript, protoc-gen-es), where `jstype` turns an
# int64 field from bigint into string.
SHIPPED_LANGUAGES = ("Python", "TypeScript")


@dataclass(frozen=True)
class CodegenOption:
    """A descriptor option read by a code generator."""

    name: str  # as written in a .proto file
    language: str
    effect: str  # what changes in that language's generated code
    buf: str  # the buf FILE rule that flags a change
    additive: bool = False  # turning it on only adds generated code (turning it off removes it)

    @property
    def shipped(self) -> bool:
        """True when the language is one of the SDKs this registry ships."""
        return self.language in SHIPPED_LANGUAGES


CODEGEN_OPTIONS: dict[str, CodegenOption] = {
    option.name: option
    for option in (
        CodegenOption(
            "jstype", "TypeScript", "an int64 field's type (bigint <-> string)", "FIELD_SAME_JSTYPE"
        ),
        CodegenOption(
            "py_generic_services",
            "Python",
            "the _pb2 module's generic service classes",
            "FILE_SAME_PY_GENERIC_SERVICES",
            additive=True,
        ),
        CodegenOption("ctype", "C++", "a string field's C++ type", "FIELD_SAME_CPP_STRING_TYPE"),
        CodegenOption(
            "cc_enable_arenas", "C++", "arena allocation of C++ messages", "FILE_SAME_CC_ENABLE_ARENAS"
        ),
        CodegenOption(
            "cc_generic_services", "C++", "generic C++ service classes", "FILE_SAME_CC_GENERIC_SERVICES"
        ),
        CodegenOption("optimize_for", "C++ and Java", "the generated base classes", "FILE_SAME_OPTIMIZE_FOR"),
        CodegenOption("java_package", "Java", "the Java package", "FILE_SAME_JAVA_PACKAGE"),
        CodegenOption(
            "java_outer_classname", "Java", "the Java outer class", "FILE_SAME_JAVA_OUTER_CLASSNAME"
        ),
        CodegenOption(
            "java_multiple_files", "Java", "one Java file per type", "FILE_SAME_JAVA_MULTIPLE_FILES"
        ),
        CodegenOption(
            "java_generic_services", "Java", "generic Java service classes", "FILE_SAME_JAVA_GENERIC_SERVICES"
        ),
        CodegenOption(
            "java_string_check_utf8",
            "Java",
            "UTF-8 checks of Java strings",
            "FIELD_SAME_JAVA_UTF8_VALIDATION",
        ),
        CodegenOption("go_package", "Go", "the Go import path and package name", "FILE_SAME_GO_PACKAGE"),
        CodegenOption("csharp_namespace", "C#", "the C# namespace", "FILE_SAME_CSHARP_NAMESPACE"),
        CodegenOption(
            "objc_class_prefix", "Objective-C", "the class name prefix", "FILE_SAME_OBJC_CLASS_PREFIX"
        ),
        CodegenOption("php_namespace", "PHP", "the PHP namespace", "FILE_SAME_PHP_NAMESPACE"),
        CodegenOption("php_class_prefix", "PHP", "the PHP class prefix", "FILE_SAME_PHP_CLASS_PREFIX"),
        CodegenOption(
            "php_metadata_namespace", "PHP", "the PHP metadata namespace", "FILE_SAME_PHP_METADATA_NAMESPACE"
        ),
        CodegenOption("ruby_package", "Ruby", "the Ruby module", "FILE_SAME_RUBY_PACKAGE"),
        CodegenOption("swift_prefix", "Swift", "the Swift type prefix", "FILE_SAME_SWIFT_PREFIX"),
        CodegenOption(
            "no_standard_descriptor_accessor",
            "C++",
            "the descriptor accessor",
            "MESSAGE_NO_REMOVE_STANDARD_DESCRIPTOR_ACCESSOR",
        ),
    )
}
