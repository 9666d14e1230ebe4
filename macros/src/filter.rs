//! The filter input of a resource: one operator input per filterable
//! field, the fields only the database decides, `and` / `or` / `not`; its
//! fold into SQL and its test of a model in memory.

use crate::{Args, Entry, Field};
use proc_macro2::TokenStream as Tokens;
use quote::quote;
use syn::Ident;

pub(crate) fn filter_input(
    args: &Args,
    filter: &Ident,
    entries: &[Entry],
    r: &Tokens,
    model: &Tokens,
    column: &dyn Fn(&Field) -> Tokens,
) -> Tokens {
    let f = quote!(crate::graphql::engine::filter);
    let doc = args.filter_doc.iter();
    let mut inputs = Vec::new();
    let mut conditions = Vec::new();
    let mut tests = Vec::new();
    let mut personal = Vec::new();
    let mut database_only = Vec::new();
    for entry in entries {
        match entry {
            Entry::Field(field) => {
                let Some(fold_case) = field.filter else {
                    continue;
                };
                let (ident, ty, docs, gql) = (&field.ident, &field.ty, &field.docs, &field.name);
                let col = column(field);
                let column_name = &field.column;
                if field.personal {
                    personal.push(quote! {
                        if self.#ident.is_some() {
                            return ::core::option::Option::Some(#gql);
                        }
                    });
                }
                let ci = fold_case.then(|| quote!(#[doc = ""] #[doc = "Compared ignoring case."]));
                inputs.push(quote! {
                    #(#docs)* #ci
                    #[graphql(name = #gql)]
                    pub #ident: ::core::option::Option<<#ty as #r::Filterable>::Filter>,
                });
                conditions.push(quote! {
                    if let ::core::option::Option::Some(f) = &self.#ident {
                        out.push(<#ty as #r::Filterable>::condition(
                            ::sea_orm::IntoSimpleExpr::into_simple_expr(#col), f, #fold_case, at.backend,
                        ));
                    }
                });
                tests.push(quote! {
                    if let ::core::option::Option::Some(f) = &self.#ident {
                        checks.push(<#ty as #r::Filterable>::test(f, &m.#column_name, #fold_case));
                    }
                });
            }
            Entry::FilterOnly(only) => {
                let (ident, ty, docs, with) = (&only.ident, &only.ty, &only.docs, &only.with);
                if only.personal {
                    let gql = crate::camel(ident, false);
                    personal.push(quote! {
                        if self.#ident.is_some() {
                            return ::core::option::Option::Some(#gql);
                        }
                    });
                }
                inputs.push(quote! {
                    #(#docs)*
                    pub #ident: ::core::option::Option<#ty>,
                });
                let call = if only.level {
                    quote!(#with(v, self, at))
                } else {
                    quote!(#with(v, at))
                };
                conditions.push(quote! {
                    if let ::core::option::Option::Some(v) = &self.#ident {
                        out.push(#call);
                    }
                });
                tests.push(quote! {
                    if self.#ident.is_some() {
                        checks.push(::core::option::Option::None);
                    }
                });
                database_only.push(quote! {
                    if self.#ident.is_some() {
                        return false;
                    }
                });
            }
        }
    }
    quote! {
        #( #[doc = #doc] )*
        #[derive(::async_graphql::InputObject, ::core::clone::Clone, ::core::fmt::Debug, ::core::default::Default, ::core::hash::Hash, ::core::cmp::PartialEq, ::core::cmp::Eq)]
        pub struct #filter {
            #(#inputs)*
            /// All of these filters must hold.
            pub and: ::core::option::Option<::std::vec::Vec<#filter>>,
            /// At least one of these filters must hold (an empty list adds nothing).
            pub or: ::core::option::Option<::std::vec::Vec<#filter>>,
            /// This filter must not hold.
            pub not: ::core::option::Option<::std::boxed::Box<#filter>>,
        }

        impl #f::Filter for #filter {
            fn fields(&self, at: #f::Against) -> ::std::vec::Vec<::sea_orm::Condition> {
                let mut out = ::std::vec::Vec::new();
                #(#conditions)*
                out
            }
            fn and(&self) -> &[Self] {
                self.and.as_deref().unwrap_or_default()
            }
            fn or(&self) -> &[Self] {
                self.or.as_deref().unwrap_or_default()
            }
            fn not(&self) -> ::core::option::Option<&Self> {
                self.not.as_deref()
            }
            fn personal(&self) -> ::core::option::Option<&'static str> {
                #(#personal)*
                ::core::option::Option::None
            }
        }

        impl #filter {
            /// Whether a row passes this filter: the answer the database
            /// gives for the same filter on the stored row (filters only
            /// the database can decide, such as `search`, answer unknown,
            /// so a filter using them never matches in memory).
            pub fn matches(&self, m: &#model::Model) -> bool {
                self.test(m, 0) == ::core::option::Option::Some(true)
            }

            /// Whether [`Self::matches`] decides this filter: it uses no
            /// filter only the database can check, at any depth.
            pub fn in_memory(&self) -> bool {
                #(#database_only)*
                #f::Filter::and(self).iter().all(Self::in_memory)
                    && #f::Filter::or(self).iter().all(Self::in_memory)
                    && #f::Filter::not(self).is_none_or(Self::in_memory)
            }

            fn test(&self, m: &#model::Model, depth: usize) -> #f::Truth {
                if depth >= #f::MAX_FILTER_DEPTH {
                    return ::core::option::Option::Some(false);
                }
                let mut checks: ::std::vec::Vec<#f::Truth> = ::std::vec::Vec::new();
                #(#tests)*
                for f in #f::Filter::and(self) {
                    checks.push(f.test(m, depth + 1));
                }
                let or = #f::Filter::or(self);
                if !or.is_empty() {
                    checks.push(#f::any(or.iter().map(|f| f.test(m, depth + 1))));
                }
                if let ::core::option::Option::Some(f) = #f::Filter::not(self) {
                    checks.push(f.test(m, depth + 1).map(|b| !b));
                }
                #f::all(checks)
            }
        }
    }
}
